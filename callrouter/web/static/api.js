// The JSON API with the console's session: the cookie travels by itself, the CSRF token in a header.
// The API's refusals are for programs (English codes); the secretary reads them in French here.
let csrf = null;

export function setCsrf(token) {
  csrf = token;
}

export class SignedOut extends Error {}

const FRENCH = {
  "400:invalid_body": "Saisie refusée : vérifiez les champs (un numéro français à 10 chiffres, par exemple 06 12 34 56 78).",
  "403:forbidden": "Action non autorisée pour votre compte.",
  "404:not_found": "Introuvable : déjà traité, supprimé, ou hors de vos cabinets.",
  "409:conflict": "Action impossible pour le moment : l'état a changé entre-temps (une collègue l'a peut-être déjà fait).",
  "422:refused": "Action refusée par le serveur.",
  "503:unavailable": "Fonction indisponible sur ce serveur pour le moment.",
  400: "Saisie refusée.",
  413: "Saisie trop longue.",
  500: "Erreur du serveur : rien n'a été modifié. Réessayez.",
  502: "Le serveur ne répond pas. Réessayez dans un instant.",
  503: "Service momentanément indisponible. Réessayez dans un instant.",
};

// Some routes already answer in French (the sign-in, the CSRF refusal, the team settings): their
// message is shown as it is; the others get the French sentence for their status and code.
const LOOKS_FRENCH = /[àâçéèêëîïôûùüœ«»]|\b(le|la|les|des|du|une|est|pas|pour|vous|aucun|aucune)\b/i;

export function frenchError(status, data, fallback) {
  const message = data && typeof data.message === "string" ? data.message : "";
  if (message && LOOKS_FRENCH.test(message)) return message;
  return FRENCH[`${status}:${data && data.error}`] || FRENCH[status] || fallback || `Erreur ${status}.`;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const error = new Error("Le serveur ne répond pas. Vérifiez la connexion au réseau.");
    error.status = 0;
    throw error;
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401) throw new SignedOut();
  if (!response.ok) {
    const error = new Error(frenchError(response.status, data));
    error.status = response.status;
    error.code = data && data.error;
    error.reason = data && data.reason;
    throw error;
  }
  return data;
}
