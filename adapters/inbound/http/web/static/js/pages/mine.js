import { api, ApiError, describeError, session } from "../api.js";
import { field, flash, formatDate, h } from "../dom.js";
import { genreSelect, loadGenres } from "../catalog.js";
import { forgetVideo, rememberedVideos } from "../mine-store.js";
import { followStatus } from "../sse.js";
import { shareLink } from "../share.js";

const MAX_STREAMS = 8; // the server allows 10 event streams per user
const STATUS_TEXT = { uploaded: "Uploaded, waiting to be processed", processing: "Processing", ready: "Ready",
  failed: "Failed", deleted: "Deleted" };

export async function render(view) {
  const me = session();
  const list = h("ul", { "aria-label": "My videos" });
  const empty = h("p", { className: "muted", hidden: true }, "No videos yet. ",
    h("a", { href: "/upload", "data-link": "" }, "Upload one"), ".");
  view.append(h("h1", {}, "My videos"), empty, h("div", { className: "mine" }, list));
  const genres = await loadGenres();
  const stops = new Map();

  const videos = new Map();
  const remembered = rememberedVideos(me.sub);
  const answers = await Promise.allSettled(remembered.map((id) => api(`/api/videos/${id}`)));
  answers.forEach((answer, index) => {
    if (answer.status === "fulfilled") videos.set(answer.value.id, answer.value);
    else if (answer.reason instanceof ApiError && answer.reason.status === 404) forgetVideo(me.sub, remembered[index]);
  });
  try {
    const listed = await api("/api/users/me/videos?limit=100");
    for (const video of listed.items) if (!videos.has(video.id)) videos.set(video.id, video);
  } catch (error) {
    flash(describeError(error), "error");
  }
  const ordered = [...videos.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  empty.hidden = ordered.length > 0;

  const draw = (video) => {
    const item = item_(video, genres, {
      onChange: (changed) => draw(changed),
      onDelete: () => {
        stops.get(video.id)?.();
        forgetVideo(me.sub, video.id);
        item.remove();
        flash(`Deleted “${video.title}”.`);
      },
    });
    const existing = list.querySelector(`[data-video="${video.id}"]`);
    if (existing) existing.replaceWith(item);
    else list.append(item);
    return item;
  };
  for (const video of ordered) {
    draw(video);
    if (["ready", "failed"].includes(video.status) || stops.size >= MAX_STREAMS) continue;
    stops.set(video.id, followStatus(video.id, async (event, data) => {
      const item = list.querySelector(`[data-video="${video.id}"]`);
      if (!item) return;
      if (event === "progress") item.update({ progress: JSON.parse(data).progress });
      if (event === "status") item.update({ status: data });
      if (event === "rendition" || (event === "status" && data === "ready")) {
        try {
          draw(await api(`/api/videos/${video.id}`));
        } catch { /* the next event redraws it */ }
      }
    }));
  }
  return () => stops.forEach((stop) => stop());
}

function item_(video, genres, { onChange, onDelete }) {
  const status = h("span", { className: "status", "data-status": video.status }, STATUS_TEXT[video.status] || video.status);
  const bar = h("progress", { max: "1", value: String(video.progress || 0), "aria-label": `Processing of ${video.title}` });
  const percent = h("span", {}, `${Math.round((video.progress || 0) * 100)}%`);
  const working = h("span", { className: "row", hidden: video.status !== "processing" }, bar, percent);
  const rungs = h("span", { className: "muted" }, video.renditions.length
    ? `Qualities: ${video.renditions.map((r) => r.name).join(", ")}` : "");
  const poster = video.thumbnails?.poster;
  const item = h("li", { "data-video": video.id },
    poster ? h("img", { className: "thumb", src: poster, alt: "" }) : h("div", { className: "thumb" }),
    h("div", {},
      h("h2", {}, video.playable ? h("a", { href: `/watch/${video.id}`, "data-link": "" }, video.title) : video.title),
      h("p", {}, status, " ", working, video.playable && video.status !== "ready" ? " · playable now" : "", " ", rungs),
      video.failure_reason ? h("p", { className: "error" }, video.failure_reason) : null,
      h("p", { className: "muted" }, `${video.visibility} · uploaded ${formatDate(video.created_at)}`),
      video.visibility !== "public" && video.playable ? shareBox(video) : null,
      editor(video, genres, onChange, onDelete)));
  item.update = ({ status: next, progress }) => {
    if (next) {
      status.textContent = STATUS_TEXT[next] || next;
      status.dataset.status = next;
      working.hidden = next !== "processing";
    }
    if (progress !== undefined) {
      bar.value = progress;
      percent.textContent = `${Math.round(progress * 100)}%`;
    }
  };
  return item;
}

function shareBox(video) {
  const link = h("input", { type: "text", readonly: true, value: shareLink(video), name: "share" });
  const note = h("span", { className: "muted", "aria-live": "polite" });
  return h("div", { className: "row" }, field("Share link (valid for about an hour)", link),
    h("button", { type: "button", className: "secondary", onclick: async () => {
      link.select();
      try {
        await navigator.clipboard.writeText(link.value);
        note.textContent = "Copied.";
      } catch {
        note.textContent = "Selected: copy it with Ctrl+C.";
      }
    } }, "Copy share link"), note);
}

function editor(video, genres, onChange, onDelete) {
  const title = h("input", { type: "text", name: "title", value: video.title, required: true, maxlength: "200" });
  const description = h("textarea", { name: "description", rows: "3" }, video.description);
  const tags = h("input", { type: "text", name: "tags", value: video.tags.join(", ") });
  const visibility = h("select", { name: "visibility" },
    ["public", "unlisted", "private"].map((v) => h("option", { value: v, selected: v === video.visibility }, v)));
  const genre = genres.length ? genreSelect(genres, video.genre || "", { noneLabel: "No genre" }) : null;
  const save = async (event) => {
    event.preventDefault();
    const patch = { title: title.value.trim(), description: description.value, visibility: visibility.value,
      tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) };
    if (genre) patch.genre = genre.value || null;
    try {
      onChange(await api(`/api/videos/${video.id}`, { method: "PATCH", body: patch }));
      flash(`Saved “${patch.title}”.`);
    } catch (error) {
      flash(describeError(error), "error");
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete “${video.title}”? This cannot be undone.`)) return;
    try {
      await api(`/api/videos/${video.id}`, { method: "DELETE" });
      onDelete();
    } catch (error) {
      flash(describeError(error), "error");
    }
  };
  return h("details", {}, h("summary", {}, `Edit “${video.title}”`),
    h("form", { className: "stack", onsubmit: save },
      field("Title", title), field("Description", description), field("Tags", tags),
      genre && field("Genre", genre), field("Visibility", visibility),
      h("div", { className: "row" }, h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", className: "danger", onclick: remove }, "Delete video"))));
}
