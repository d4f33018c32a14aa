// Server-Sent Events over fetch, because EventSource cannot send the Authorization header.
// The server ends a stream when the token it was opened with expires; it is then reopened
// with the current token until the status is final or the caller stops it.
import { accessToken, refresh } from "./api.js";

const FINAL = new Set(["ready", "failed", "deleted"]);

export function followStatus(videoId, onEvent) {
  const controller = new AbortController();
  let final = false;
  const open = async () => {
    while (!final && !controller.signal.aborted) {
      try {
        const response = await fetch(`/api/videos/${videoId}/events`, {
          headers: { Authorization: `Bearer ${accessToken()}`, Accept: "text/event-stream" }, signal: controller.signal,
        });
        if (response.status === 401 && (await refresh())) continue;
        if (!response.ok) return;
        await read(response.body, (event, data) => {
          if (event === "status" && FINAL.has(data)) final = true;
          onEvent(event, data);
        });
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (!final) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  open();
  return () => controller.abort();
}

async function read(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) emit(event, data.join("\n"));
    }
  }
}
