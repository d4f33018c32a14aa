// A share link for an unlisted or private video: the client's /shared page, carrying the video's
// signed media URLs in the fragment (which browsers never send to a server). It works without
// an account for as long as the signed URLs do (an hour by default).
export function shareLink(video) {
  const data = new URLSearchParams({ title: video.title, hls: video.streams.hls });
  if (video.thumbnails?.poster) data.set("poster", video.thumbnails.poster);
  if (video.thumbnails?.storyboard) data.set("storyboard", video.thumbnails.storyboard);
  return `${location.origin}/shared/${video.id}#${data}`;
}

// The shared media URLs, accepted only when they are the video's own signed media paths.
export function sharedMedia(videoId, fragment) {
  const data = new URLSearchParams(fragment);
  const signed = (value) => {
    if (!value) return null;
    try {
      const url = new URL(value, location.origin);
      return /^https?:$/.test(url.protocol) && url.pathname.includes(`/t/`) && url.pathname.includes(`/${videoId}/`)
        ? url.href : null;
    } catch {
      return null;
    }
  };
  return { title: data.get("title") || "Shared video", hls: signed(data.get("hls")),
    poster: signed(data.get("poster")), storyboard: signed(data.get("storyboard")) };
}
