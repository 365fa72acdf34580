import type { ClerkSettings } from './auth/clerk.js';

/** What the control plane tells the console at /console/config.json. */
export interface ConsoleSettings {
  /** `make dev` (VANTAGEEDGE_DEV_MODE): POST /console/dev-session issues a development token. */
  dev_sign_in: boolean;
  /** Set when the control plane has CLERK_PUBLISHABLE_KEY: Clerk's hosted sign-in. */
  clerk: ClerkSettings | null;
}

export async function loadConsoleSettings(): Promise<ConsoleSettings> {
  const response = await fetch(`${import.meta.env.BASE_URL}config.json`, {
    headers: { accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`the control plane answered ${response.status} for the console settings`);
  return (await response.json()) as ConsoleSettings;
}

export interface DevSession {
  token: string;
  user_id: string;
}

export async function requestDevSession(): Promise<DevSession> {
  const response = await fetch(`${import.meta.env.BASE_URL}dev-session`, {
    method: 'POST',
    headers: { accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`the development sign-in answered ${response.status}`);
  return (await response.json()) as DevSession;
}
