// Admin: a user's roles, and disabling an account. Users are found by id (the API has no user
// search): the watch page links an uploader here.
import { api, describeError } from "../api.js";
import { field, flash, h } from "../dom.js";
import { navigate } from "../main.js";

const ROLES = ["user", "moderator", "admin"];

export async function render(view) {
  const userId = new URLSearchParams(location.search).get("user") || "";
  const input = h("input", { type: "text", name: "user", value: userId, required: true, spellcheck: "false" });
  view.append(h("h1", {}, "Admin"), h("form", { className: "row", onsubmit: (event) => {
    event.preventDefault();
    navigate(`/admin?user=${encodeURIComponent(input.value.trim())}`);
  } }, field("User id", input), h("button", { type: "submit" }, "Find user")));
  if (!userId) return;
  let user;
  try {
    user = await api(`/api/users/${encodeURIComponent(userId)}`);
  } catch (error) {
    flash(describeError(error), "error");
    return;
  }
  const boxes = ROLES.map((role) => h("input", { type: "checkbox", name: "roles", value: role,
    checked: (user.roles || []).includes(role) }));
  const roles = h("form", { className: "stack", onsubmit: async (event) => {
    event.preventDefault();
    const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
    try {
      user = await api(`/api/users/${user.id}/roles`, { method: "PUT", body: { roles: chosen } });
      flash(`Roles of ${user.username}: ${(user.roles || chosen).join(", ")}.`);
    } catch (error) {
      flash(describeError(error), "error");
    }
  } }, h("fieldset", {}, h("legend", {}, "Roles"),
    boxes.map((box, index) => h("label", { className: "inline" }, box, ROLES[index]))),
  h("button", { type: "submit" }, "Save roles"));
  const disable = h("button", { type: "button", className: "danger", onclick: async () => {
    if (!window.confirm(`Disable ${user.username}? They can no longer sign in.`)) return;
    try {
      await api(`/api/users/${user.id}/disable`, { method: "POST" });
      flash(`${user.username} is disabled.`);
      disable.disabled = true;
    } catch (error) {
      flash(describeError(error), "error");
    }
  } }, "Disable account");
  view.append(h("h2", {}, `${user.display_name || user.username} (@${user.username})`),
    h("p", { className: "muted" }, user.email || ""), roles, h("p", {}, disable));
}
