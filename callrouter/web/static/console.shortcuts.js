// Keyboard shortcuts for the frequent actions, listed in the « Raccourcis » help (key ?). None
// fires while she types in a field, nor with Ctrl, Alt or Cmd held (the browser's own shortcuts).
import { $ } from "/static/console.format.js";

function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  return !["button", "checkbox", "radio", "submit", "reset"].includes((target.type || "").toLowerCase());
}

export function openHelp() {
  const help = $("help");
  if (!help.open) help.showModal();
}

// actions: key (lower case) -> function; "Escape" too.
export function setup(actions) {
  $("help-open").addEventListener("click", openHelp);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if ($("help").open) return; // the dialog closes itself on Escape
    const key = event.key === "?" || event.key === "Escape" ? event.key : event.key.toLowerCase();
    const action = key === "?" ? openHelp : actions[key];
    if (!action) return;
    event.preventDefault();
    document.body.dataset.lastShortcut = key;
    action();
  });
}
