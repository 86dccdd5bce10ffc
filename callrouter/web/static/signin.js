// The sign-in page: password and TOTP code; a first sign-in shows the QR code to enrol.
const form = document.getElementById("signin");
const error = document.getElementById("error");
const enrol = document.getElementById("enrol");

if (new URLSearchParams(location.search).has("expiree")) {
  show("Votre session a expiré après une période d'inactivité. Reconnectez-vous.");
}

function show(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const body = {
    username: form.username.value.trim(),
    password: form.password.value,
    totp: form.totp.value.trim(),
  };
  if (!body.username || !body.password) {
    show("Saisissez votre identifiant et votre mot de passe.");
    return;
  }
  document.getElementById("submit").disabled = true;
  try {
    const response = await fetch("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) {
      // Supervisors and administrators land on the wallboard, secretaries on their console.
      const me = await fetch("/api/session", { credentials: "same-origin" }).then((r) => r.json()).catch(() => ({}));
      location.assign(["supervisor", "administrator"].includes(me.role) ? "/wallboard" : "/console");
      return;
    }
    if (response.status === 409 && data.error === "totp_enrolment") {
      document.getElementById("enrol-text").textContent = data.message;
      document.getElementById("enrol-qr").src = data.qr;
      document.getElementById("enrol-secret").textContent = data.secret;
      enrol.hidden = false;
      form.totp.value = "";
      form.totp.focus();
      return;
    }
    show(data.message || "Connexion impossible. Réessayez.");
    form.totp.value = "";
  } catch (e) {
    show("Le serveur ne répond pas. Vérifiez la connexion au réseau.");
  } finally {
    document.getElementById("submit").disabled = false;
  }
});
