/**
 * `node:url` in the browser build: custom-domain names are converted to punycode with the browser's
 * own IDNA (UTS #46) mapping, the same conversion Node's domainToASCII does. An invalid name gives '',
 * as in Node.
 */
export function domainToASCII(domain: string): string {
  try {
    return new URL(`http://${domain}/`).hostname;
  } catch {
    return '';
  }
}
