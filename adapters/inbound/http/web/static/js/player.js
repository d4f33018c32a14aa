// The player: hls.js where Media Source Extensions exist, the browser's own HLS elsewhere
// (Safari), with our controls: play, a seek bar showing storyboard tiles on hover, time,
// mute, a quality menu (auto plus each rung of the ladder) and full screen.
import Hls from "../vendor/hls.min.mjs";
import { formatDuration, h } from "./dom.js";
import { loadStoryboard, tileAt } from "./storyboard.js";

// A rung's name: the video's own (240p for 416x234), else its height.
function rungName(level, renditions) {
  const same = renditions.find((r) => r.width === level.width && r.height === level.height);
  return same ? same.name : `${level.height}p`;
}

export function createPlayer({ hls: source, poster, storyboard, label, renditions = [], onStart }) {
  const video = h("video", { playsinline: "", preload: "metadata", poster: poster || undefined, "aria-label": label });
  const play = h("button", { type: "button" }, "Play");
  const seek = h("input", { type: "range", min: "0", max: "0", step: "0.1", value: "0", "aria-label": "Seek" });
  const time = h("span", { className: "time" }, "0:00 / –:––");
  const mute = h("button", { type: "button" }, "Mute");
  const quality = h("select", { name: "quality" }, h("option", { value: "-1" }, "Auto"));
  const qualityField = h("label", {}, "Quality", quality);
  const fullscreen = h("button", { type: "button" }, "Full screen");
  const tile = h("div", { className: "tile" });
  const tileTime = h("div", {});
  const preview = h("div", { className: "preview", hidden: true, "aria-hidden": "true" }, tile, tileTime);
  const controls = h("div", { className: "controls" }, play, h("div", { className: "seek" }, seek, preview), time, mute,
    qualityField, fullscreen);
  const element = h("div", { className: "player" }, video, controls);
  let engine = null;
  let started = false;

  if (Hls.isSupported()) {
    engine = new Hls({ capLevelToPlayerSize: false, startLevel: -1 });
    engine.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      quality.replaceChildren(h("option", { value: "-1" }, "Auto"),
        ...data.levels.map((level, index) => h("option", { value: String(index) }, rungName(level, renditions))));
    });
    engine.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal && data.type === Hls.ErrorTypes.NETWORK_ERROR) engine.startLoad();
      else if (data.fatal && data.type === Hls.ErrorTypes.MEDIA_ERROR) engine.recoverMediaError();
    });
    engine.loadSource(source);
    engine.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = source;
    qualityField.hidden = true; // the browser picks the rung itself
  }
  quality.addEventListener("change", () => {
    if (engine) engine.currentLevel = Number(quality.value); // switches now, dropping the buffer ahead
  });

  const toggle = () => (video.paused ? video.play() : video.pause());
  play.addEventListener("click", toggle);
  video.addEventListener("click", toggle);
  video.addEventListener("play", () => { play.textContent = "Pause"; });
  video.addEventListener("pause", () => { play.textContent = "Play"; });
  video.addEventListener("playing", () => {
    if (!started) {
      started = true;
      onStart?.();
    }
  });
  const tick = () => {
    if (document.activeElement !== seek) seek.value = String(video.currentTime);
    time.textContent = `${formatDuration(video.currentTime)} / ${formatDuration(video.duration)}`;
  };
  video.addEventListener("durationchange", () => { seek.max = String(video.duration || 0); tick(); });
  video.addEventListener("timeupdate", tick);
  seek.addEventListener("input", () => { video.currentTime = Number(seek.value); });
  mute.addEventListener("click", () => {
    video.muted = !video.muted;
    mute.textContent = video.muted ? "Unmute" : "Mute";
  });
  fullscreen.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else element.requestFullscreen?.();
  });

  // Storyboard tiles over the seek bar: on pointer hover, and for the keyboard while seeking.
  const cues = storyboard ? loadStoryboard(storyboard) : Promise.resolve([]);
  const showAt = async (seconds, x) => {
    const cue = tileAt(await cues, seconds);
    if (!cue) return;
    Object.assign(tile.style, { width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.image}")`,
      backgroundPosition: `-${cue.x}px -${cue.y}px` });
    tileTime.textContent = formatDuration(seconds);
    preview.style.left = `${x}px`;
    preview.hidden = false;
  };
  seek.addEventListener("pointermove", (event) => {
    const box = seek.getBoundingClientRect();
    const ratio = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    if (video.duration) showAt(ratio * video.duration, event.clientX - box.left);
  });
  seek.addEventListener("pointerleave", () => { preview.hidden = true; });
  seek.addEventListener("blur", () => { preview.hidden = true; });
  seek.addEventListener("keydown", () => {
    const box = seek.getBoundingClientRect();
    setTimeout(() => video.duration && showAt(Number(seek.value), (Number(seek.value) / video.duration) * box.width));
  });

  return {
    element, video, quality,
    destroy: () => {
      engine?.destroy();
      video.removeAttribute("src");
    },
  };
}
