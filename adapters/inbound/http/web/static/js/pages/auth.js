import { describeError, signIn, signUp } from "../api.js";
import { field, flash, h } from "../dom.js";
import { navigate } from "../main.js";

function next() {
  const target = new URLSearchParams(location.search).get("next") || "/my";
  return target.startsWith("/") && !target.startsWith("//") ? target : "/my";
}

export function renderSignIn(view) {
  const name = h("input", { type: "text", name: "username", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const form = h("form", { className: "stack", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await signIn(name.value.trim(), password.value);
      navigate(next(), { replace: true });
    } catch (error) {
      flash(describeError(error), "error");
    }
  } }, field("Username or email", name), field("Password", password), h("button", { type: "submit" }, "Sign in"));
  view.append(h("h1", {}, "Sign in"), form,
    h("p", {}, "New here? ", h("a", { href: "/signup", "data-link": "" }, "Create an account")));
}

export function renderSignUp(view) {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true,
    minlength: "3", maxlength: "32", pattern: "[A-Za-z0-9_.\\-]{3,32}" });
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const display = h("input", { type: "text", name: "display_name", autocomplete: "name" });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true,
    minlength: "10", maxlength: "256" });
  const form = h("form", { className: "stack", onsubmit: async (event) => {
    event.preventDefault();
    const fields = { username: username.value.trim(), email: email.value.trim(), password: password.value };
    if (display.value.trim()) fields.display_name = display.value.trim();
    try {
      await signUp(fields);
      navigate(next(), { replace: true });
      flash(`Welcome, ${fields.username}.`);
    } catch (error) {
      flash(describeError(error), "error");
    }
  } },
  field("Username (3–32 of a–z, 0–9, _ . -)", username), field("Email", email), field("Display name (optional)", display),
  field("Password (at least 10 characters)", password), h("button", { type: "submit" }, "Sign up"));
  view.append(h("h1", {}, "Sign up"), form,
    h("p", {}, "Have an account? ", h("a", { href: "/signin", "data-link": "" }, "Sign in")));
}
