// What several pages share: the genre list (an audience feature that may not be deployed yet)
// and a video's card.
import { api, ApiError } from "./api.js";
import { formatDuration, h } from "./dom.js";

let genres = null;

// The allowed genres, or [] while the server has none (the genre widgets then stay hidden).
export async function loadGenres() {
  if (genres) return genres;
  try {
    const answer = await api("/api/videos/genres");
    genres = Array.isArray(answer) ? answer : answer.items || [];
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    genres = [];
  }
  return genres;
}

export function genreSelect(list, current = "", { allowNone = true, noneLabel = "Any genre" } = {}) {
  return h("select", { name: "genre" },
    allowNone ? h("option", { value: "" }, noneLabel) : null,
    list.map((genre) => h("option", { value: genre, selected: genre === current }, genre)));
}

export function videoCard(video, heading = "h2") {
  const href = `/watch/${video.id}`;
  const poster = video.thumbnails?.poster;
  return h("li", { className: "card" },
    h("a", { href, "data-link": "", tabindex: "-1", "aria-hidden": "true" },
      poster ? h("img", { src: poster, alt: "", loading: "lazy" }) : h("div", { className: "thumb" })),
    h("div", { className: "body" },
      h(heading, {}, h("a", { href, "data-link": "" }, video.title)),
      h("p", { className: "muted" },
        [formatDuration(video.duration_s), video.view_count !== undefined ? `${video.view_count} views` : null]
          .filter(Boolean).join(" · "))));
}
