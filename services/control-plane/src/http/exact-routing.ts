import express from 'express';

/**
 * The admin API matches its paths exactly, as Kong's admin API does: `/API/V1/TENANTS` and
 * `/api/v1/tenants/` are unknown paths (its 404), not the tenants list. express would match a path in
 * any case and with a trailing slash; its routers do not take the app's settings, so every router of
 * the app is made by exactRouter.
 */
export function routeExactly(app: express.Express): void {
  app.enable('case sensitive routing');
  app.enable('strict routing');
}

/** A router that matches its paths exactly, as the app does (routeExactly). */
export function exactRouter(): express.Router {
  return express.Router({ caseSensitive: true, strict: true });
}
