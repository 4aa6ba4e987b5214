/**
 * The HTML of the Looker stand-in: the app page (who Looker thinks you are, deep links,
 * a button that calls the API with fetch() like Looker's single-page app) and small
 * message pages (login refused, signed out, alternate e-mail login).
 */
import { AUTH_PATHS } from '../../../core/session-contract';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One row of the identity table: label, `data-field` name, trusted HTML. */
export type IdentityRow = readonly [label: string, field: string, html: string];

export interface AppPage {
  /** Path and query the browser is on. */
  readonly location: string;
  readonly greeting: string;
  /** What the table shows, in a sentence (escaped). */
  readonly intro: string;
  readonly rows: readonly IdentityRow[];
  readonly signOutHref: string;
}

const NAV_LINKS = [
  ['/', 'Home'],
  ['/dashboards/42', 'Dashboard 42'],
  ['/explore/thelook/orders?fields=orders.count&f[orders.region]=emea', 'Explore orders'],
  ['/browse/shared', 'Shared folder'],
] as const;

/** Chips for a list of names, or "none". */
export function chips(values: readonly string[], kind: string): string {
  return values.length ? values.map((v) => `<span class="chip ${kind}">${escapeHtml(v)}</span>`).join(' ') : '<span class="none">none</span>';
}

/** `name = value` chips for attributes, or "none". */
export function attributeChips(attributes: Readonly<Record<string, string>>): string {
  const entries = Object.entries(attributes);
  return entries.length
    ? entries.map(([k, v]) => `<span class="chip attr">${escapeHtml(k)} = ${escapeHtml(v)}</span>`).join(' ')
    : '<span class="none">none</span>';
}

export function timeHtml(epochSeconds: number | null): string {
  return epochSeconds ? `<time data-exp="${epochSeconds}">${new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z')}</time>` : '-';
}

const STYLE = `
  :root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --brand:#4f46e5; --bg:#f8fafc; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--ink); font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
  header { display:flex; align-items:center; gap:18px; padding:12px 24px; background:#111827; color:#fff; }
  header .logo { font-weight:700; letter-spacing:.02em; }
  header .logo span { color:#a5b4fc; font-weight:400; }
  header nav a { color:#d1d5db; text-decoration:none; margin-right:14px; font-size:14px; }
  header nav a:hover { color:#fff; }
  header .logout { margin-left:auto; color:#fca5a5; text-decoration:none; font-size:14px; }
  main { max-width:880px; margin:24px auto; padding:0 24px; }
  .card { background:#fff; border:1px solid var(--line); border-radius:12px; padding:20px 22px; margin-bottom:18px; }
  h1 { font-size:20px; margin:0 0 4px; } .where { color:var(--muted); margin:0 0 14px; font-size:14px; }
  table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:8px 6px; border-top:1px solid var(--line); vertical-align:top; }
  th { width:160px; color:var(--muted); font-weight:600; font-size:13px; }
  .chip { display:inline-block; padding:1px 9px; border-radius:999px; font-size:13px; background:#eef2ff; color:#3730a3; }
  .chip.group { background:#ecfdf5; color:#065f46; } .chip.attr { background:#fff7ed; color:#9a3412; }
  .none { color:var(--muted); } code { font-size:13px; }
  .error { color:#b91c1c; }
  button { padding:8px 14px; border:0; border-radius:8px; background:var(--brand); color:#fff; font:inherit; font-weight:600; cursor:pointer; }
  #api-results { margin:12px 0 0; padding:0; list-style:none; font-size:13px; }
  #api-results li { padding:6px 0; border-top:1px solid var(--line); } .ok { color:#047857; } .fail { color:#b91c1c; }
`;

function shell(title: string, body: string, signOutHref?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head>
<body>
<header><div class="logo">Looker <span>stand-in behind the gateway</span></div>
<nav>${NAV_LINKS.map(([href, label]) => `<a href="${escapeHtml(href)}">${escapeHtml(label)}</a>`).join('')}</nav>
${signOutHref ? `<a class="logout" href="${escapeHtml(signOutHref)}">Sign out</a>` : ''}</header>
<main>
${body}
</main>
</body></html>`;
}

/** The app page: the identity table and the API button. */
export function appPage(page: AppPage): string {
  return shell(
    `Looker (stand-in) - ${page.location}`,
    `<section class="card" id="identity">
<h1>${escapeHtml(page.greeting)}</h1>
<p class="where">You are on <code id="location">${escapeHtml(page.location)}</code>. ${escapeHtml(page.intro)}</p>
<table>${page.rows.map(([label, key, html]) => `<tr><th>${escapeHtml(label)}</th><td data-field="${key}">${html}</td></tr>`).join('')}</table>
</section>
<section class="card">
<h1>API calls</h1>
<p class="where">Looker's UI is a single-page app: these run with fetch() and the session cookie, like its XHRs.</p>
<button id="call-api" type="button">Call /api/4.0/user and /api/4.0/looks</button>
<ul id="api-results"></ul>
</section>
<script>
document.getElementById('call-api').addEventListener('click', async function () {
  var list = document.getElementById('api-results');
  for (var path of ['/api/4.0/user', '/api/4.0/looks']) {
    var item = document.createElement('li');
    try {
      var res = await fetch(path, { headers: { accept: 'application/json' } });
      var body = await res.json().catch(function () { return {}; });
      item.className = res.ok ? 'ok' : 'fail';
      item.dataset.status = String(res.status);
      item.dataset.requestId = body.request_id || '';
      item.textContent = res.status + ' ' + path + ' - request id ' + (body.request_id || '?') + (body.role_names ? ' - roles ' + body.role_names.join(', ') : '');
    } catch (error) {
      item.className = 'fail';
      item.dataset.status = 'error';
      item.textContent = 'failed ' + path + ': ' + error;
    }
    list.prepend(item);
  }
});
</script>`,
    page.signOutHref,
  );
}

/** A page with a heading and one message (escaped); `reason` is shown as `data-reason` for tests and people alike. */
export function messagePage(title: string, message: string, reason?: string, linkHref?: string, linkText?: string): string {
  return shell(
    `${title} - Looker (stand-in)`,
    `<section class="card" id="message"${reason ? ` data-reason="${escapeHtml(reason)}"` : ''}>
<h1>${escapeHtml(title)}</h1>
<p class="${reason ? 'error' : 'where'}">${escapeHtml(message)}</p>
${reason ? `<p class="where">Reason: <code>${escapeHtml(reason)}</code></p>` : ''}
${linkHref ? `<p><a href="${escapeHtml(linkHref)}">${escapeHtml(linkText ?? linkHref)}</a></p>` : ''}
</section>`,
  );
}

/** The gateway's logout, the sign-out link in header mode. */
export const GATEWAY_SIGN_OUT = AUTH_PATHS.logout;
