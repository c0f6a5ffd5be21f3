// A modal form in the page's <dialog>: Esc or "取消" cancels, focus returns where it was.

import { h, replaceChildren } from "./dom.js";

let dialogCount = 0;

/**
 * Ask for some values. fields: [{name, label, kind: "textarea"|"number", required, min, max,
 * value, hint}]. Resolves to {name: value} or null when cancelled.
 */
export function askInDialog(dialog, { title, intro, fields, submitLabel }) {
  const n = ++dialogCount;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const inputs = fields.map((field) => {
    const id = `dialog-${n}-${field.name}`;
    const input = field.kind === "textarea"
      ? h("textarea", { id, name: field.name, rows: 4, maxlength: field.maxlength || 2000,
        required: field.required })
      : h("input", { id, name: field.name, type: field.kind || "text", min: field.min,
        max: field.max, required: field.required });
    if (field.value !== undefined) input.value = field.value;
    return { field, input, block: h("div", { class: "field" }, h("label", { for: id }, field.label),
      input, field.hint ? h("p", { class: "hint" }, field.hint) : null) };
  });
  const cancel = h("button", { type: "button", class: "button-quiet" }, "取消");
  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", { id: "action-dialog-title" }, title),
    intro ? h("p", { class: "meta" }, intro) : null,
    inputs.map((i) => i.block), error,
    h("div", { class: "button-row" },
      h("button", { type: "submit", class: "button-primary" }, submitLabel), cancel));
  return runModal(dialog, form, {
    cancel,
    focus: inputs[0].input,
    onSubmit(finish) {
      const values = {};
      for (const { field, input } of inputs) {
        const raw = input.value.trim();
        if (field.required && !raw) {
          error.textContent = `请填写“${field.label}”。`;
          error.hidden = false;
          input.focus();
          return;
        }
        values[field.name] = field.kind === "number" ? Number(raw) : raw;
      }
      finish(values);
    },
  });
}

/**
 * Show ``form`` in ``dialog`` as a modal. Resolves to what ``onSubmit`` hands to its
 * ``finish``, or to ``cancelled`` when Esc or ``cancel`` closes it; focus returns where it was.
 */
export function runModal(dialog, form, { cancel, onSubmit, focus, cancelled = null }) {
  const returnFocus = document.activeElement;
  replaceChildren(dialog, form);
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      if (returnFocus && returnFocus.isConnected) returnFocus.focus();
      resolve(value);
    };
    cancel.addEventListener("click", () => finish(cancelled));
    dialog.addEventListener("close", () => finish(cancelled), { once: true });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onSubmit(finish);
    });
    dialog.showModal();
    if (focus) focus.focus();
  });
}
