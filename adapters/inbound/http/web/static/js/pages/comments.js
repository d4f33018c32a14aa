// Comments: oldest first, one level of replies; post, reply, edit (the author), delete (the
// author, the video's owner, moderators and admins). Bodies are plain text, shown as text.
import { api, describeError, isStaff, session } from "../api.js";
import { field, flash, formatDate, h } from "../dom.js";

export async function renderComments(section, video) {
  const first = await api(`/api/videos/${video.id}/comments?limit=50`); // 404/405: the caller hides the section
  const me = session();
  const list = h("ol", {});
  const more = h("button", { type: "button", className: "secondary", hidden: true }, "More comments");
  const replies = new Map();
  let cursor = null;

  const composer = (parentId, onDone) => {
    const body = h("textarea", { name: "body", rows: "2", required: true, maxlength: "5000" });
    return h("form", { className: "stack", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const comment = await api(`/api/videos/${video.id}/comments`, { method: "POST",
          body: parentId ? { body: body.value, parent_id: parentId } : { body: body.value } });
        body.value = "";
        add(comment);
        onDone?.();
      } catch (error) {
        flash(describeError(error), "error");
      }
    } }, field(parentId ? "Your reply" : "Add a comment", body), h("button", { type: "submit" }, parentId ? "Reply" : "Post"));
  };

  const entry = (comment) => {
    const text = h("p", { className: "text" }, comment.deleted ? "[deleted]" : comment.body);
    const edited = h("span", { className: "muted" }, comment.edited_at ? " (edited)" : "");
    const actions = h("div", { className: "row" });
    const item = h("li", { className: "comment", "data-comment": comment.id },
      h("div", {}, h("strong", {}, comment.author.display_name || comment.author.username), " ",
        h("span", { className: "muted" }, `@${comment.author.username} · ${formatDate(comment.created_at)}`), edited),
      text, actions);
    if (comment.deleted) return item;
    const mine = comment.author.id === me.sub;
    if (!comment.parent_id) {
      const thread = h("ol", { className: "replies" });
      replies.set(comment.id, thread);
      item.append(thread);
      actions.append(h("button", { type: "button", className: "secondary", onclick: (event) => {
        const form = composer(comment.id, () => form.remove());
        event.currentTarget.after(form);
        form.querySelector("textarea").focus();
      } }, "Reply"));
    }
    if (mine) {
      actions.append(h("button", { type: "button", className: "secondary", onclick: () => {
        const body = h("textarea", { name: "body", rows: "2", required: true, maxlength: "5000" }, text.textContent);
        const form = h("form", { className: "stack", onsubmit: async (event) => {
          event.preventDefault();
          try {
            const changed = await api(`/api/comments/${comment.id}`, { method: "PATCH", body: { body: body.value } });
            text.textContent = changed.body;
            edited.textContent = " (edited)";
            form.remove();
          } catch (error) {
            flash(describeError(error), "error");
          }
        } }, field("Edit your comment", body), h("button", { type: "submit" }, "Save"));
        actions.after(form);
        body.focus();
      } }, "Edit"));
    }
    if (mine || video.owner_id === me.sub || isStaff()) {
      actions.append(h("button", { type: "button", className: "danger", onclick: async () => {
        try {
          await api(`/api/comments/${comment.id}`, { method: "DELETE" });
          text.textContent = "[deleted]";
          actions.remove();
        } catch (error) {
          flash(describeError(error), "error");
        }
      } }, "Delete"));
    }
    return item;
  };

  const add = (comment) => {
    const parent = comment.parent_id && replies.get(comment.parent_id);
    (parent || list).append(entry(comment));
  };
  const page = (answer) => {
    answer.items.forEach(add);
    cursor = answer.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener("click", async () => {
    try {
      page(await api(`/api/videos/${video.id}/comments?limit=50&cursor=${encodeURIComponent(cursor)}`));
    } catch (error) {
      flash(describeError(error), "error");
    }
  });
  section.append(h("h2", {}, `Comments${video.comment_count !== undefined ? ` (${video.comment_count})` : ""}`),
    composer(null), list, more);
  page(first);
}
