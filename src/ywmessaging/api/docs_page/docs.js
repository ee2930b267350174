// Starts Swagger UI on /openapi.yaml (a file, not an inline script: the page's policy runs
// scripts from this origin only). The spec's first server is `/`, so "Try it out" calls the
// server that serves this page.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    validatorUrl: null,   // no call to an outside validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
