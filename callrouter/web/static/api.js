// The JSON API with the console's session: the cookie travels by itself, the CSRF token in a header.
let csrf = null;

export function setCsrf(token) {
  csrf = token;
}

export class SignedOut extends Error {}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) throw new SignedOut();
  if (!response.ok) {
    const error = new Error((data && data.message) || `erreur ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}
