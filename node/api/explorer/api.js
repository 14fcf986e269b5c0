// The node's public API, read from the browser (same origin only; the page's
// Content-Security-Policy allows nothing else). The bearer token, needed only when
// the node sets [api] auth_reads, stays in this tab's sessionStorage.

const TOKEN_KEY = 'branchnet-explorer-token';
// The API lives beside /explorer/ (also behind a reverse proxy that adds a prefix).
const BASE = location.pathname.replace(/explorer\/.*$/, '');

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(`${status} ${code}: ${message}${field ? ` (${field})` : ''}`);
    Object.assign(this, { status, code, field });
  }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY) || '';
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value.trim()); else sessionStorage.removeItem(TOKEN_KEY);
}

function headers() { return token() ? { Authorization: `Bearer ${token()}` } : {}; }

export function url(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  return `${BASE}${path.replace(/^\//, '')}${q.size ? `?${q}` : ''}`;
}

async function request(path, params) {
  const r = await fetch(url(path, params), { headers: headers(), cache: 'no-store' });
  if (!r.ok) {
    let err = {};
    try { err = (await r.json()).error ?? {}; } catch (e) { /* not the API's error shape */ }
    if (r.status === 401) document.dispatchEvent(new CustomEvent('need-token'));
    throw new ApiError(r.status, err.code ?? 'http', err.message ?? r.statusText, err.field);
  }
  return r;
}

/** GET a JSON document. */
export async function get(path, params) { return (await request(path, params)).json(); }

/** GET the text of a document as the node sent it. */
export async function getText(path, params) { return (await request(path, params)).text(); }

/** Follow /v1/events (server-sent events over fetch, so the token can be sent), calling
 * onEvent(name, data) for each; reconnects with backoff until stop() is called.
 * onState(state) hears "live", "reconnecting" or "stopped". */
export function followEvents(onEvent, onState = () => {}) {
  const control = new AbortController();
  let delay = 1000;
  (async () => {
    while (!control.signal.aborted) {
      try {
        const r = await fetch(url('/v1/events'), { headers: headers(), signal: control.signal, cache: 'no-store' });
        if (!r.ok) throw new ApiError(r.status, 'events', r.statusText);
        onState('live');
        delay = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const chunk = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = 'message', data = '';
            for (const line of chunk.split('\n')) {
              if (line.startsWith('event: ')) name = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) { try { onEvent(name, JSON.parse(data)); } catch (e) { console.error(e); } }
          }
        }
      } catch (e) {
        if (control.signal.aborted) break;
        if (e.status === 401) document.dispatchEvent(new CustomEvent('need-token'));
      }
      if (control.signal.aborted) break;
      onState('reconnecting');
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 15000);
    }
    onState('stopped');
  })();
  return () => control.abort();
}
