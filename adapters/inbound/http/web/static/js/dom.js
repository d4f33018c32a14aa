// Builds elements from data. User text only ever becomes text nodes or attribute values:
// nothing here parses markup, so a title or comment holding <script> shows literally.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

let fieldCount = 0;

// A labelled control: <label>Text <input …></label>, which screen readers and axe accept.
export function field(text, control) {
  control.id ||= `field-${++fieldCount}`;
  return h("label", { for: control.id }, text, control);
}

export function flash(message, kind = "info") {
  const box = document.getElementById("flash");
  box.textContent = message || "";
  box.className = kind === "error" ? "error" : "";
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–:––";
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600), minutes = Math.floor((total % 3600) / 60), secs = total % 60;
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return `${hours ? `${hours}:` : ""}${mm}:${String(secs).padStart(2, "0")}`;
}

export function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatDate(iso) {
  return new Date(iso).toLocaleString();
}
