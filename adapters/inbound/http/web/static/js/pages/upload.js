// Resumable uploads with tus-js-client. tus keeps each upload's URL in localStorage under the
// file's fingerprint, so picking the same file again after a reload resumes where it stopped.
import { accessToken, refresh, session } from "../api.js";
import { append, clear, field, flash, formatBytes, formatDuration, h } from "../dom.js";
import { genreSelect, loadGenres } from "../catalog.js";
import { rememberVideo } from "../mine-store.js";

// A part is kept by the server only once it arrived whole, so a pause or a dropped link costs
// the part in flight: parts of about a sixteenth of the file, between 64 KiB and 8 MiB, let small
// files resume part-way without making large ones pay a request per few kilobytes.
const chunkBytes = (size) => Math.min(8 * 1024 * 1024, Math.max(64 * 1024, Math.ceil(size / 16)));
const MESSAGES = {
  413: "This file is too big for this server.",
  415: "This is not a video file vodhub can read (it takes MP4, MOV, WebM, Matroska, AVI, MPEG-TS, FLV and Ogg videos).",
};

function failure(error) {
  const response = error.originalResponse;
  const status = response ? response.getStatus() : 0;
  let detail = "";
  try {
    detail = JSON.parse(response.getBody()).detail || "";
  } catch { /* not a problem document */ }
  if (status === 429) return `Too many uploads: try again in ${response.getHeader("Retry-After") || "a while"} seconds.`;
  if (MESSAGES[status]) return `${MESSAGES[status]}${detail ? ` (${detail})` : ""}`;
  if (status) return `Upload failed (${status}): ${detail || "the server refused it"}`;
  return `Upload failed: ${error.message}`;
}

export async function render(view) {
  const file = h("input", { type: "file", name: "file", accept: "video/*,.mkv,.ts,.flv,.ogv" });
  const title = h("input", { type: "text", name: "title", maxlength: "200" });
  const description = h("textarea", { name: "description", rows: "3" });
  const tags = h("input", { type: "text", name: "tags", placeholder: "comma, separated" });
  const visibility = h("select", { name: "visibility" },
    h("option", { value: "public" }, "Public"), h("option", { value: "unlisted" }, "Unlisted"),
    h("option", { value: "private" }, "Private"));
  const genres = await loadGenres();
  const genre = genres.length ? genreSelect(genres, "", { noneLabel: "No genre" }) : null;
  const chosen = h("p", { className: "muted" }, "No file chosen.");
  const drop = h("div", { className: "drop" }, h("p", {}, "Drop a video here, or"), field("Choose a video file", file), chosen);
  const start = h("button", { type: "submit" }, "Upload");
  const pause = h("button", { type: "button", className: "secondary", disabled: true }, "Pause");
  const resume = h("button", { type: "button", className: "secondary", disabled: true }, "Resume");
  const bar = h("progress", { max: "1", value: "0", "aria-label": "Upload progress" });
  const figures = h("p", { className: "muted", "aria-live": "polite" });
  const done = h("p", { className: "done" });
  let picked = null;
  let upload = null;

  const pick = (chosenFile) => {
    picked = chosenFile;
    chosen.textContent = chosenFile ? `${chosenFile.name} (${formatBytes(chosenFile.size)})` : "No file chosen.";
    if (chosenFile && !title.value) title.value = chosenFile.name.replace(/\.[^.]+$/, "");
  };
  file.addEventListener("change", () => pick(file.files[0] || null));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) pick(event.dataTransfer.files[0]);
  });

  let lastBytes = 0, lastTime = 0, speed = 0;
  const progress = (sent, total) => {
    const now = performance.now();
    if (lastTime && now > lastTime && sent >= lastBytes) {
      const current = ((sent - lastBytes) * 1000) / (now - lastTime);
      speed = speed ? speed * 0.7 + current * 0.3 : current;
    }
    lastBytes = sent;
    lastTime = now;
    bar.value = total ? sent / total : 0;
    const left = speed > 0 ? formatDuration((total - sent) / speed) : "–";
    figures.textContent = `${Math.floor((100 * sent) / total)}% · ${formatBytes(sent)} of ${formatBytes(total)} · `
      + `${formatBytes(speed)}/s · ${left} left`;
  };

  const form = h("form", { className: "stack", onsubmit: async (event) => {
    event.preventDefault();
    if (!picked) {
      flash("Choose a video file first.", "error");
      return;
    }
    flash("");
    done.replaceChildren();
    const metadata = { filename: picked.name, title: title.value.trim() || picked.name,
      description: description.value, tags: tags.value, visibility: visibility.value };
    if (genre?.value) metadata.genre = genre.value;
    upload = new window.tus.Upload(picked, {
      endpoint: "/api/videos/uploads",
      chunkSize: chunkBytes(picked.size),
      retryDelays: [0, 1000, 3000, 5000],
      metadata,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest: (request) => request.setHeader("Authorization", `Bearer ${accessToken()}`),
      onShouldRetry: (error, attempt, options) => {
        const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (status === 401) return refresh().then((ok) => ok && attempt < 2);
        return ![400, 403, 404, 409, 410, 413, 415, 422, 429].includes(status) && attempt < options.retryDelays.length;
      },
      onProgress: progress,
      onError: (error) => {
        flash(failure(error), "error");
        start.disabled = false;
        pause.disabled = resume.disabled = true;
      },
      onSuccess: ({ lastResponse }) => {
        const videoId = lastResponse.getHeader("Vodhub-Video-Id");
        start.disabled = false;
        pause.disabled = resume.disabled = true;
        bar.value = 1;
        if (videoId) rememberVideo(session().sub, videoId);
        append(clear(done), ["Uploaded. It is being processed: follow it in ",
          h("a", { href: "/my", "data-link": "" }, "My videos"),
          videoId ? [" or ", h("a", { href: `/watch/${videoId}`, "data-link": "" }, "open its page")] : [], "."]);
        flash("Upload complete.");
      },
    });
    const previous = await upload.findPreviousUploads();
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      flash("Resuming an earlier upload of this file.");
    }
    lastBytes = lastTime = speed = 0;
    start.disabled = true;
    pause.disabled = false;
    upload.start();
  } },
  drop, field("Title", title), field("Description", description), field("Tags", tags),
  genre && field("Genre", genre), field("Visibility", visibility),
  h("div", { className: "row" }, start, pause, resume), bar, figures, done);

  pause.addEventListener("click", async () => {
    pause.disabled = true;
    await upload.abort();
    resume.disabled = false;
    figures.textContent = `Paused at ${Math.floor(bar.value * 100)}%.`;
  });
  resume.addEventListener("click", () => {
    resume.disabled = true;
    pause.disabled = false;
    lastBytes = lastTime = speed = 0;
    upload.start();
  });
  // Leaving the page does not stop an upload: it goes on, and "My videos" shows it when done.
  view.append(h("h1", {}, "Upload a video"), form);
}
