import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import express, { type Request, type Response, type Router } from 'express';
import { routeLabel } from './metrics.ts';

/**
 * /docs: Swagger UI (the swagger-ui-dist package, served from node_modules) rendering /openapi.json, with "Try it
 * out" against this API: paste a token under Authorize. Nothing is loaded from anywhere else, and the
 * Content-Security-Policy says so to the browser: scripts, styles and requests from this origin only.
 */
export const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // swagger-ui.css draws its icons as data: images.
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SWAGGER_UI_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The package's files the page uses, and their types: nothing else of node_modules is reachable. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ctrlplane API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
`;

// An own script file, not an inline one: the policy allows no inline script.
const START_SCRIPT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  // No call to the public validator service: nothing leaves this origin.
  validatorUrl: null,
  // The token pasted under Authorize is kept for this tab only, never stored.
  persistAuthorization: false,
  displayRequestDuration: true,
  tryItOutEnabled: false,
});
`;

function withPolicy(res: Response): Response {
  res.setHeader('Content-Security-Policy', DOCS_CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  return res;
}

export function docsRoutes(): Router {
  const router = express.Router();
  const files = new Map(
    Object.entries(ASSETS).map(([name, type]) => [
      name,
      { type, body: readFileSync(join(SWAGGER_UI_DIR, name)) },
    ]),
  );
  router.get('/docs', routeLabel('/docs'), (_req: Request, res: Response) => {
    withPolicy(res).type('html').send(PAGE);
  });
  router.get('/docs/start.js', routeLabel('/docs/start.js'), (_req: Request, res: Response) => {
    withPolicy(res).type('text/javascript; charset=utf-8').send(START_SCRIPT);
  });
  router.get('/docs/assets/:file', routeLabel('/docs/assets/:file'), (req: Request, res: Response, next) => {
    const file = files.get(String(req.params.file));
    if (!file) return next();
    withPolicy(res).setHeader('Cache-Control', 'public, max-age=3600');
    res.type(file.type).send(file.body);
  });
  return router;
}
