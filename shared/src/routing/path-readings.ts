import { normalizePath } from './normalize-path.js';

/**
 * The other paths a common origin may take a normalised request path for, besides the path itself:
 *  - without `;` parameters in each segment (Tomcat, Spring, Jetty drop `;jsessionid=…`; `/a/..;/b`
 *    becomes `/a/../b`, i.e. `/b`), normalised again;
 *  - with the trailing slash toggled (Express, Spring, Rails and most frameworks route `/a/` as `/a`);
 * each of them also compared case-insensitively by the caller (Express, ASP.NET, IIS route
 * case-insensitively). Returns only readings that differ from `path`.
 */
export function originReadings(path: string): string[] {
  const readings: string[] = [];
  const toggled = toggleTrailingSlash(path);
  if (!path.includes(';')) {
    if (toggled !== undefined) readings.push(toggled);
    return readings;
  }
  const withoutParams = stripPathParameters(path);
  addReading(readings, path, withoutParams);
  addReading(readings, path, toggled);
  if (withoutParams !== undefined) addReading(readings, path, toggleTrailingSlash(withoutParams));
  return readings;
}

function addReading(readings: string[], path: string, reading: string | undefined): void {
  if (reading !== undefined && reading !== path && !readings.includes(reading)) readings.push(reading);
}

function toggleTrailingSlash(path: string): string | undefined {
  if (path === '/') return undefined;
  return path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
}

function stripPathParameters(path: string): string | undefined {
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const semicolon = segments[i]!.indexOf(';');
    if (semicolon >= 0) segments[i] = segments[i]!.slice(0, semicolon);
  }
  const stripped = segments.join('/');
  const normalized = normalizePath(stripped, 'keep');
  return normalized.ok ? normalized.path : undefined;
}
