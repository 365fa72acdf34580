import { type RequestOptions, request } from 'node:http';

/**
 * One HTTP/1.1 request sent as written (fetch would resolve `.` segments in the path and pool its
 * connection); resolves with the answer's status and its body read as UTF-8 text.
 */
export function plainHttpRequest(options: RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    sent.on('error', reject);
    sent.end();
  });
}
