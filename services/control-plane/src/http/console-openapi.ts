/**
 * The web console's own endpoints in /openapi.json (the console itself is a static app; its API calls
 * are the /api/v1 operations). No authentication: they only say how to sign in.
 */
const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };

export function consolePaths(): Record<string, unknown> {
  return {
    // The page is at both addresses: paths are matched exactly, and /console/ is the one a browser keeps.
    '/console': consolePage('getConsole', 'The web console (a static app)'),
    '/console/': consolePage('getConsoleWithSlash', 'The web console at /console/, the same page'),
    '/console/config.json': {
      get: {
        operationId: 'getConsoleSettings',
        tags: ['Console'],
        summary: 'Which sign-ins the console offers',
        security: [],
        responses: {
          '200': {
            description: 'the sign-in settings',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['dev_sign_in', 'clerk'],
                  additionalProperties: false,
                  properties: {
                    dev_sign_in: {
                      type: 'boolean',
                      description: 'make dev’s development sign-in is available',
                    },
                    clerk: {
                      description: 'Clerk’s hosted sign-in (CLERK_PUBLISHABLE_KEY), or null',
                      oneOf: [
                        { type: 'null' },
                        {
                          type: 'object',
                          required: ['publishable_key', 'script_url'],
                          additionalProperties: false,
                          properties: {
                            publishable_key: { type: 'string' },
                            script_url: { type: 'string', format: 'uri' },
                          },
                        },
                      ],
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    '/console/dev-session': {
      post: {
        operationId: 'createConsoleDevSession',
        tags: ['Console'],
        summary: 'A development session token for the console (make dev only; 404 elsewhere)',
        security: [],
        responses: {
          '200': {
            description: 'a DEVELOPMENT-ONLY Clerk-shaped token of make dev’s platform admin',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['token', 'user_id'],
                  additionalProperties: false,
                  properties: { token: { type: 'string' }, user_id: { type: 'string' } },
                },
              },
            },
          },
          '404': { description: 'not_found: not make dev', content: errorContent },
        },
      },
    },
  };
}

/** GET of the console's page (a static app; a browser may ask for it with or without the slash). */
function consolePage(operationId: string, summary: string): Record<string, unknown> {
  return {
    get: {
      operationId,
      tags: ['Console'],
      summary,
      security: [],
      responses: {
        '200': {
          description: 'the console page',
          content: { 'text/html': { schema: { type: 'string' } } },
        },
        '412': {
          description: 'precondition_failed: an If-Match or If-Unmodified-Since the page does not meet',
          content: errorContent,
        },
        '416': {
          description:
            'range_not_satisfiable: a Range past the end of the page (Content-Range: bytes */<size>)',
          content: errorContent,
        },
        '503': { description: 'console_not_built: CONSOLE_DIR has no build', content: errorContent },
      },
    },
  };
}
