// The ids of the videos this browser uploaded for each user. The listing only shows public,
// ready videos, so "My videos" joins it with these to show the private ones and those still
// processing.
const key = (userId) => `vodhub.mine.${userId}`;

export function rememberedVideos(userId) {
  try {
    return JSON.parse(localStorage.getItem(key(userId))) || [];
  } catch {
    return [];
  }
}

export function rememberVideo(userId, videoId) {
  const ids = rememberedVideos(userId).filter((id) => id !== videoId);
  localStorage.setItem(key(userId), JSON.stringify([videoId, ...ids].slice(0, 500)));
}

export function forgetVideo(userId, videoId) {
  localStorage.setItem(key(userId), JSON.stringify(rememberedVideos(userId).filter((id) => id !== videoId)));
}
