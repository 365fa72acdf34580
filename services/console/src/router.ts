import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (#/tenants/<id>/routes): the control plane serves one static index.html, so every
 * console address works on reload and as a link without a server-side fallback.
 */
export type Location =
  | { page: 'tenants' }
  | { page: 'tenant'; tenantId: string; tab: TenantTab }
  | { page: 'not-found'; path: string };

export const TENANT_TABS = [
  'overview',
  'origins',
  'routes',
  'keys',
  'domains',
  'audit',
  'rollout',
  'usage',
  'history',
  'explain',
] as const;
export type TenantTab = (typeof TENANT_TABS)[number];

export function parseLocation(hash: string): Location {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '/tenants') return { page: 'tenants' };
  const tenant = /^\/tenants\/([0-9a-f-]{36})(?:\/([a-z]+))?$/.exec(path);
  if (tenant) {
    const tab = (tenant[2] ?? 'overview') as TenantTab;
    if (TENANT_TABS.includes(tab)) return { page: 'tenant', tenantId: tenant[1] as string, tab };
  }
  return { page: 'not-found', path };
}

export function hrefOf(location: Location): string {
  switch (location.page) {
    case 'tenants':
      return '#/tenants';
    case 'tenant':
      return `#/tenants/${location.tenantId}/${location.tab}`;
    case 'not-found':
      return `#${location.path}`;
  }
}

export function navigate(location: Location): void {
  window.location.hash = hrefOf(location);
}

export function useLocation(): Location {
  const [location, setLocation] = useState(() => parseLocation(window.location.hash));
  useEffect(() => {
    const update = () => setLocation(parseLocation(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return location;
}
