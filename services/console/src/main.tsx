import { render } from 'preact';
import { App } from './app.js';
import { loadConsoleSettings } from './console-settings.js';
import './styles.css';

const root = document.getElementById('app') as HTMLElement;
loadConsoleSettings().then(
  (settings) => render(<App settings={settings} />, root),
  (error: unknown) => {
    root.textContent = `The console could not start: ${error instanceof Error ? error.message : String(error)}`;
  },
);
