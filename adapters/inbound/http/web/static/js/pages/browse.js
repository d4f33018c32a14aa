import { api, describeError, session } from "../api.js";
import { clear, field, flash, h } from "../dom.js";
import { genreSelect, loadGenres, videoCard } from "../catalog.js";
import { navigate } from "../main.js";

const SORTS = [["newest", "Newest"], ["views", "Most viewed"], ["likes", "Most liked"]];

export async function render(view) {
  const params = new URLSearchParams(location.search);
  view.append(h("h1", {}, params.get("q") ? `Results for “${params.get("q")}”` : "Browse"));
  if (!session()) {
    view.append(h("p", {}, h("a", { href: "/signin?next=/", "data-link": "" }, "Sign in"), " or ",
      h("a", { href: "/signup?next=/", "data-link": "" }, "sign up"), " to browse and upload videos."));
    return;
  }
  const q = h("input", { type: "search", name: "q", value: params.get("q") || "" });
  const tag = h("input", { type: "text", name: "tag", value: params.get("tag") || "" });
  const sort = h("select", { name: "sort" },
    SORTS.map(([value, text]) => h("option", { value, selected: value === (params.get("sort") || "newest") }, text)));
  const genres = await loadGenres();
  const genre = genres.length ? genreSelect(genres, params.get("genre") || "") : null;
  const form = h("form", { className: "row", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const control of [q, tag, sort, genre]) if (control?.value.trim()) next.set(control.name, control.value.trim());
    if (next.get("sort") === "newest") next.delete("sort");
    navigate(`/browse${next.size ? `?${next}` : ""}`);
  } }, field("Search", q), field("Tag", tag), genre && field("Genre", genre), field("Sort by", sort),
  h("button", { type: "submit" }, "Search"));
  const list = h("ul", { className: "grid", "aria-label": "Videos" });
  const more = h("button", { type: "button", className: "secondary", hidden: true }, "Load more");
  const empty = h("p", { className: "muted", hidden: true }, "No videos found.");
  view.append(form, list, empty, more);

  let cursor = null;
  const load = async () => {
    const query = new URLSearchParams({ limit: "12" });
    for (const key of ["q", "tag", "genre", "sort"]) if (params.get(key)) query.set(key, params.get(key));
    if (cursor) query.set("cursor", cursor);
    more.disabled = true;
    try {
      const page = await api(`/api/videos?${query}`);
      list.append(...page.items.map((video) => videoCard(video)));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      empty.hidden = list.childElementCount > 0;
    } catch (error) {
      flash(describeError(error), "error");
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  clear(list);
  await load();
}
