// The router: one page, a view per path. Links marked data-link navigate without reloading.
import { onSessionChange, restore, session, signOut } from "./api.js";
import { clear, flash, h } from "./dom.js";
import * as admin from "./pages/admin.js";
import * as auth from "./pages/auth.js";
import * as browse from "./pages/browse.js";
import * as mine from "./pages/mine.js";
import * as upload from "./pages/upload.js";
import * as watch from "./pages/watch.js";

const ROUTES = [
  [/^\/(browse)?$/, browse.render],
  [/^\/signin$/, auth.renderSignIn],
  [/^\/signup$/, auth.renderSignUp],
  [/^\/upload$/, upload.render, { signedIn: true }],
  [/^\/my$/, mine.render, { signedIn: true }],
  [/^\/admin$/, admin.render, { signedIn: true }],
  [/^\/watch\/([^/]+)$/, watch.render],
  [/^\/shared\/([^/]+)$/, watch.renderShared, { public: true }],
];

const view = document.getElementById("view");
let cleanup = null;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show();
}

async function show() {
  if (cleanup) cleanup();
  cleanup = null;
  flash("");
  const path = location.pathname;
  const [, renderView, options = {}] = ROUTES.find(([pattern]) => pattern.test(path)) || [];
  clear(view);
  if (!renderView) {
    view.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/", "data-link": "" }, "Browse videos")));
    return;
  }
  if (!options.public && !session() && (options.signedIn || path.startsWith("/watch/"))) {
    navigate(`/signin?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    return;
  }
  const params = path.match(ROUTES.find(([pattern]) => pattern.test(path))[0]).slice(1);
  try {
    cleanup = (await renderView(view, ...params)) || null;
  } catch (error) {
    flash(error.message, "error");
  }
  document.title = `${view.querySelector("h1")?.textContent || "vodhub"} · vodhub`;
}

function drawNav(user) {
  const nav = document.getElementById("nav");
  const link = (href, text) => h("a", { href, "data-link": "" }, text);
  if (!user) {
    nav.replaceChildren(link("/", "Browse"), link("/signin", "Sign in"), link("/signup", "Sign up"));
    return;
  }
  const items = [link("/", "Browse"), link("/upload", "Upload"), link("/my", "My videos")];
  if (user.roles.includes("admin")) items.push(link("/admin", "Admin"));
  items.push(h("span", { className: "who" }, user.username));
  items.push(h("button", { type: "button", onclick: async () => { await signOut(); navigate("/"); } }, "Sign out"));
  nav.replaceChildren(...items);
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-link]");
  if (!anchor || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});
window.addEventListener("popstate", show);
onSessionChange(drawNav);

drawNav(null);
await restore();
drawNav(session());
show();
