// Running the secretary's actions: an error is shown in French where she acted; a session that has
// ended sends her back to the sign-in page.
import { SignedOut } from "/static/api.js";

export function signedOut(expired) {
  location.assign(expired ? "/console/connexion?expiree" : "/console/connexion");
}

// Runs `action`; its error goes to the element `where` (hidden again on the next try).
export async function guarded(action, where = "action-error") {
  const box = document.getElementById(where);
  if (box && box.classList.contains("error")) box.hidden = true;
  try {
    return await action();
  } catch (e) {
    if (e instanceof SignedOut) return signedOut(true);
    if (box) {
      box.textContent = e.message;
      if (!box.classList.contains("error")) box.className = "notice ko";
      box.hidden = false;
    }
    return undefined;
  }
}
