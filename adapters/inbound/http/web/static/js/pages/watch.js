import { api, ApiError, describeError, session } from "../api.js";
import { videoCard } from "../catalog.js";
import { flash, formatDate, h } from "../dom.js";
import { createPlayer } from "../player.js";
import { sharedMedia } from "../share.js";
import { renderComments } from "./comments.js";

// The audience widgets (likes, comments, related videos, the view beacon) use routes that a
// server may not have yet: a 404 or 405 from one of them hides its widget and nothing else.
function hideWhenMissing(widget) {
  return (error) => {
    if (error instanceof ApiError && error.missingRoute) widget.remove();
    else flash(describeError(error), "error");
  };
}

export async function render(view, videoId) {
  let video;
  try {
    video = await api(`/api/videos/${encodeURIComponent(videoId)}`);
  } catch (error) {
    view.append(h("h1", {}, "Video not found"), h("p", {}, describeError(error)));
    return null;
  }
  const heading = h("h1", {}, video.title);
  if (!video.playable) {
    view.append(heading, h("p", {}, `This video is ${video.status}; it plays once its first quality is ready.`));
    return null;
  }
  const player = createPlayer({
    hls: video.streams.hls, poster: video.thumbnails.poster, storyboard: video.thumbnails.storyboard, label: video.title,
    renditions: video.renditions,
    onStart: () => api(`/api/videos/${video.id}/views`, { method: "POST" }).catch(() => {}),
  });
  const main = h("div", {}, player.element, heading,
    video.status !== "ready" ? h("p", { className: "muted" }, "Still processing: higher qualities appear when you reload.") : null,
    h("div", { className: "row" }, likeButton(video), h("span", { className: "muted" },
      [video.view_count !== undefined ? `${video.view_count} views` : null, formatDate(video.created_at)].filter(Boolean).join(" · "))),
    h("p", { className: "desc" }, video.description),
    video.tags.length ? h("ul", { className: "tags", "aria-label": "Tags" },
      video.tags.map((tag) => h("li", {}, h("a", { href: `/browse?tag=${encodeURIComponent(tag)}`, "data-link": "" }, tag)))) : null,
    video.genre ? h("p", {}, "Genre: ", h("a", { href: `/browse?genre=${encodeURIComponent(video.genre)}`, "data-link": "" }, video.genre)) : null,
    session()?.roles.includes("admin") && video.owner_id !== session().sub
      ? h("p", {}, h("a", { href: `/admin?user=${video.owner_id}`, "data-link": "" }, "Manage the uploader's account")) : null);
  const comments = h("section", { className: "comments", "aria-label": "Comments" });
  main.append(comments);
  const related = h("aside", { "aria-label": "Related videos" }, h("h2", {}, "Related"));
  view.append(h("div", { className: "watch" }, main, related));

  renderComments(comments, video).catch(hideWhenMissing(comments));
  api(`/api/videos/${video.id}/related`).then((answer) => {
    const items = Array.isArray(answer) ? answer : answer.items || [];
    if (!items.length) related.append(h("p", { className: "muted" }, "Nothing related yet."));
    else related.append(h("ul", { className: "grid" }, items.map((item) => videoCard(item, "h3"))));
  }).catch(hideWhenMissing(related));
  return player.destroy;
}

function likeButton(video) {
  if (video.like_count === undefined) return null;
  let liked = Boolean(video.liked_by_me), count = video.like_count;
  const button = h("button", { type: "button", className: "secondary" });
  const draw = () => {
    button.textContent = `${liked ? "♥ Liked" : "♡ Like"} · ${count}`;
    button.setAttribute("aria-pressed", String(liked));
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/api/videos/${video.id}/like`, { method: liked ? "DELETE" : "PUT" });
      count += liked ? -1 : 1;
      liked = !liked;
      draw();
    } catch (error) {
      hideWhenMissing(button)(error);
    } finally {
      button.disabled = false;
    }
  });
  draw();
  return button;
}

// A share link: no account, the signed media URLs from the link's fragment.
export function renderShared(view, videoId) {
  const media = sharedMedia(videoId, location.hash.slice(1));
  if (!media.hls) {
    view.append(h("h1", {}, "This share link is incomplete"), h("p", {}, "Ask for the link again."));
    return null;
  }
  const player = createPlayer({ hls: media.hls, poster: media.poster, storyboard: media.storyboard, label: media.title });
  view.append(h("div", {}, player.element, h("h1", {}, media.title),
    h("p", { className: "muted" }, "Shared with you: this link stops working when its signature expires.")));
  return player.destroy;
}
