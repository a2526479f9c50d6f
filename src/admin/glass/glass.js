// The looking glass, served by the node at /glass (src/admin/glass/mod.rs).
//
// It fetches the admin API with the token and draws what it answers. Rules
// this file keeps:
// - text that came from the network (prefixes, agent names, communities,
//   capabilities, errors, targets) enters the page only as text nodes or
//   textContent/title, never as markup; a test feeds it <script> and
//   <img onerror> and checks they stay text;
// - numbers used in SVG attributes are computed here, ASNs are checked to
//   be integers first;
// - everything rendered is bounded (LIMITS), and so is what a fetch reads.
'use strict';

(() => {
  const LIMITS = {
    peerRows: 200,
    routeRows: 500,
    adjInRows: 500,
    graphAses: 60,
    inflightRows: 100,
    recentCalls: 50,
    traceHops: 32,
    pathHops: 64,
    textChars: 300,
    responseBytes: 32 * 1024 * 1024,
  };
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 10000;
  const TOKEN_KEY = 'abgp-glass-token';
  const TOKEN_RE = /^[\x21-\x7e]{16,256}$/;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PEER_STATES = new Set(['idle', 'connecting', 'open-sent', 'open-confirm', 'established']);

  const $ = (id) => document.getElementById(id);

  // ---- safe building blocks ------------------------------------------------

  /** Any value as display text, cut at LIMITS.textChars. */
  function text(v) {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'string' ? v : (typeof v === 'object' ? JSON.stringify(v) : String(v));
    return s.length > LIMITS.textChars ? s.slice(0, LIMITS.textChars) + '…' : s;
  }

  /** An HTML element; children are nodes or values shown as text. */
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'title') e.title = text(v);
      else if (k === 'type') e.type = v;
      else if (k === 'click') e.addEventListener('click', v);
      else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = text(dv);
      else throw new Error('h: unknown property ' + k);
    }
    for (const c of kids) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(text(c)));
    }
    return e;
  }

  /** An SVG element; attributes are numbers or class names from this file. */
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(text(c)));
    return e;
  }

  const isAsn = (n) => Number.isInteger(n) && n >= 0 && n <= 4294967295;
  const num = (n) => (Number.isFinite(n) ? n : null);
  const arr = (v) => (Array.isArray(v) ? v : []);

  function short(id) {
    const s = text(id);
    return s.length > 16 ? s.slice(0, 8) + '…' + s.slice(-6) : s;
  }

  function dur(ms) {
    if (!Number.isFinite(ms) || ms < 0) return '—';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' m';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  function micros(us) {
    if (!Number.isFinite(us)) return '—';
    return us < 1000 ? us + ' µs' : (us / 1000).toFixed(1) + ' ms';
  }

  const clock = (d) => d.toLocaleTimeString([], { hour12: false });

  function note(id, msg) {
    const e = $(id);
    e.textContent = msg || '';
    e.hidden = !msg;
  }

  // ---- the token -------------------------------------------------------------

  const memory = {};
  function store(k, v) {
    try {
      if (v === null) sessionStorage.removeItem(k);
      else sessionStorage.setItem(k, v);
    } catch (e) {
      // Storage off: keep it for this page only.
      if (v === null) delete memory[k];
      else memory[k] = v;
    }
  }
  function recall(k) {
    try {
      return sessionStorage.getItem(k);
    } catch (e) {
      return memory[k] || null;
    }
  }

  /** The token from `#token=...`, which is then taken out of the address bar. */
  function tokenFromFragment() {
    if (!location.hash) return undefined;
    const t = new URLSearchParams(location.hash.slice(1)).get('token');
    history.replaceState(null, '', location.pathname + location.search);
    return t === null ? undefined : t;
  }

  let token = null;

  function showLogin(why) {
    token = null;
    store(TOKEN_KEY, null);
    $('views').hidden = true;
    $('login').hidden = false;
    $('login-why').textContent = why;
    $('token-input').focus();
  }

  function showViews() {
    $('login').hidden = true;
    $('views').hidden = false;
  }

  // ---- fetching ----------------------------------------------------------------

  async function readCapped(r) {
    const mib = LIMITS.responseBytes / 1048576;
    const len = Number(r.headers.get('content-length'));
    if (len > LIMITS.responseBytes) {
      if (r.body) r.body.cancel();
      throw new Error(`the answer has ${len} bytes, over this page's ${mib} MiB; use the admin API directly`);
    }
    if (!r.body) return r.text();
    const reader = r.body.getReader();
    const chunks = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > LIMITS.responseBytes) {
        reader.cancel();
        throw new Error(`the answer is over this page's ${mib} MiB; use the admin API directly`);
      }
      chunks.push(value);
    }
    const all = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) {
      all.set(c, o);
      o += c.length;
    }
    return new TextDecoder().decode(all);
  }

  /** GET a JSON admin path: {status, data} or {status, error}; never throws. */
  async function getJson(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const r = await fetch(path, {
        headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
        referrerPolicy: 'no-referrer',
        signal: ctl.signal,
      });
      const body = await readCapped(r);
      let data;
      try {
        data = JSON.parse(body);
      } catch (e) {
        return { status: r.status, error: r.ok ? 'the answer is not JSON' : 'HTTP ' + r.status };
      }
      if (!r.ok) {
        const msg = data && typeof data.error === 'string' ? data.error : 'HTTP ' + r.status;
        return { status: r.status, error: msg };
      }
      return { status: r.status, data };
    } catch (e) {
      const msg = e && e.name === 'AbortError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : e && e.message;
      return { status: 0, error: text(msg || e) };
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- state and polling -------------------------------------------------------

  const state = {
    status: null,
    peers: [],
    routes: [],
    inflight: [],
    recent: undefined, // undefined: not asked yet; null: the node has no /v1/calls/recent
    recentError: null,
    adjIn: null,
    selectedPeer: null,
    lastOk: null,
    failingSince: null,
    paused: false,
    filter: '',
    graphKey: '',
    updates: 0,
  };
  let timer = null;
  let running = false;

  function schedule(ms) {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(tick, ms);
  }

  async function tick() {
    timer = null;
    // A hidden tab asks nothing; it catches up when shown again.
    if (state.paused || !token || running || document.visibilityState === 'hidden') return;
    running = true;
    const t0 = performance.now();
    const recent = '/v1/calls/recent?limit=' + LIMITS.recentCalls;
    const paths = ['/v1/status', '/v1/peers', '/v1/routes', '/v1/calls', recent];
    const peer = state.selectedPeer;
    if (peer) paths.push('/v1/routes/in/' + encodeURIComponent(peer));
    const answers = await Promise.all(paths.map(getJson));
    running = false;
    if (answers.some((a) => a.status === 401)) {
      showLogin('The node refused the token (401). Paste the one in its admin.token file.');
      return;
    }
    const [st, pe, ro, ca, re, ai] = answers;
    if (st.data && typeof st.data === 'object') state.status = st.data;
    if (Array.isArray(pe.data)) state.peers = pe.data;
    if (Array.isArray(ro.data)) state.routes = ro.data;
    if (Array.isArray(ca.data)) state.inflight = ca.data;
    if (re.status === 404) {
      state.recent = null;
      state.recentError = null;
    } else if (Array.isArray(re.data)) {
      state.recent = re.data;
      state.recentError = null;
    } else {
      state.recentError = re.error || 'not a list';
    }
    if (peer && peer === state.selectedPeer) {
      state.adjIn = ai.data && typeof ai.data === 'object' ? ai.data : { error: ai.error };
    }
    const failed = [st, pe, ro, ca].find((a) => a.error);
    if (failed) {
      if (!state.failingSince) state.failingSince = new Date();
      const last = state.lastOk ? `; showing what it said at ${clock(state.lastOk)}` : '';
      const e = $('error');
      e.textContent = `Not updated since ${clock(state.failingSince)}: ${text(failed.error)}${last}.`;
      e.hidden = false;
    } else {
      state.failingSince = null;
      state.lastOk = new Date();
      state.updates += 1;
      $('error').hidden = true;
    }
    showViews();
    render();
    // A node with a big RIB is asked less often than every 2 s.
    const spent = performance.now() - t0;
    const every = Math.max(POLL_MS, Math.round(5 * spent));
    const when = state.lastOk ? `updated ${clock(state.lastOk)} in ${Math.round(spent)} ms` : 'not updated yet';
    $('updated').textContent = `${when} · every ${(every / 1000).toFixed(every % 1000 ? 1 : 0)} s`;
    document.body.dataset.updates = String(state.updates);
    schedule(every);
  }

  // ---- rendering -----------------------------------------------------------------

  function render() {
    renderNode();
    renderGraph();
    renderPeers();
    renderAdjIn();
    renderRoutes();
    renderInflight();
    renderRecent();
  }

  function renderNode() {
    const s = state.status;
    if (!s) return;
    const parts = [
      `AS ${isAsn(s.asn) ? s.asn : '?'}`,
      `federation ${text(s.federation)}`,
      `peer ${short(s.peer_id)}`,
      `v${text(s.version)}`,
      `up ${dur(num(s.uptime_ms))}`,
      `${num(s.loc_rib_routes) ?? '?'} routes`,
    ];
    if (s.peers && typeof s.peers === 'object') {
      parts.push(`${num(s.peers.established) ?? '?'} of ${num(s.peers.total) ?? '?'} peers established`);
    }
    const e = $('node');
    e.textContent = parts.join(' · ');
    e.title = text(s.peer_id);
  }

  function stateClass(st) {
    return PEER_STATES.has(st) ? 'state-' + st : 'state-other';
  }

  function renderPeers() {
    const peers = state.peers;
    const now = state.status ? num(state.status.now_ms) : null;
    $('peers-count').textContent = `(${peers.length})`;
    note('peers-note', peers.length > LIMITS.peerRows ? `Showing ${LIMITS.peerRows} of ${peers.length} peers.` : '');
    const rows = peers.slice(0, LIMITS.peerRows).map((p) => {
      const since = num(p.established_since);
      const up = since !== null && now !== null ? dur(now - since) : '—';
      const open = h('button', { type: 'button', click: () => selectPeer(p.peer_id) }, 'paths');
      return h(
        'tr',
        { data: { peer: p.peer_id } },
        h('td', { class: 'mono', title: p.peer_id }, short(p.peer_id)),
        h('td', { class: 'num' }, isAsn(p.asn) && p.asn !== 0 ? p.asn : '?'),
        h('td', {}, h('span', { class: 'badge ' + stateClass(p.state) }, p.state)),
        h('td', {}, p.internal ? 'internal' : 'external'),
        h('td', { class: 'num' }, up),
        h('td', { class: 'num' }, num(p.accepted_routes) ?? ''),
        h('td', {}, p.source || ''),
        h('td', { class: 'err', title: p.last_error || p.blocked || '' }, p.last_error || p.blocked || ''),
        h('td', {}, open),
      );
    });
    $('peers-table').tBodies[0].replaceChildren(...rows);
  }

  function selectPeer(id) {
    state.selectedPeer = typeof id === 'string' ? id : null;
    state.adjIn = null;
    renderAdjIn();
    if (!state.paused) schedule(0);
  }

  function asPathCell(path) {
    const p = arr(path);
    if (p.length === 0) return h('td', { class: 'path local' }, 'local');
    const td = h('td', { class: 'path' });
    for (const a of p.slice(0, LIMITS.pathHops)) td.append(h('span', { class: 'asn' }, isAsn(a) ? a : '?'));
    if (p.length > LIMITS.pathHops) td.append(h('span', { class: 'dim' }, `+${p.length - LIMITS.pathHops}`));
    return td;
  }

  const routeKey = (r) => `${text(r.prefix)}|${num(r.path_id)}`;

  function renderAdjIn() {
    const box = $('adj-in');
    const id = state.selectedPeer;
    if (!id) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const close = h('button', { type: 'button', click: () => selectPeer(null) }, 'close');
    $('adj-in-title').replaceChildren(`Paths from ${short(id)} `, close);
    const body = $('adj-in-table').tBodies[0];
    const a = state.adjIn;
    if (!a) {
      note('adj-in-note', 'Loading…');
      body.replaceChildren();
      return;
    }
    if (a.error) {
      note('adj-in-note', `The node did not show this peer's paths: ${text(a.error)}`);
      body.replaceChildren();
      return;
    }
    const best = new Set(state.routes.filter((r) => r.peer === id).map(routeKey));
    const post = arr(a.post_policy);
    const postKeys = new Set(post.map(routeKey));
    const rejected = arr(a.pre_policy).filter((r) => !postKeys.has(routeKey(r)));
    const all = post.map((r) => [r, best.has(routeKey(r)) ? 'best' : 'candidate']).concat(rejected.map((r) => [r, 'rejected']));
    note(
      'adj-in-note',
      `${post.length} accepted by import policy, ${rejected.length} rejected` +
        (all.length > LIMITS.adjInRows ? `; showing ${LIMITS.adjInRows} of ${all.length}` : '') +
        '. ★ marks the path the node chose (in its Loc-RIB).',
    );
    const rows = all.slice(0, LIMITS.adjInRows).map(([r, kind]) =>
      h(
        'tr',
        { class: 'adj-' + kind },
        h('td', {}, h('span', { class: 'badge mark-' + kind, title: kind }, kind === 'best' ? '★ best' : kind)),
        h('td', { class: 'mono' }, r.prefix),
        h('td', {}, r.agent),
        asPathCell(r.as_path),
        h('td', { class: 'num' }, num(r.local_pref) ?? ''),
        h('td', { class: 'num' }, num(r.med) ?? ''),
        h('td', {}, arr(r.communities).map(text).join(', ')),
      ),
    );
    body.replaceChildren(...rows);
  }

  function matches(r, q) {
    if (!q) return true;
    if (/^\d+$/.test(q) && arr(r.as_path).includes(Number(q))) return true;
    const hay = [r.prefix, r.agent, r.peer, ...arr(r.communities), ...arr(r.capabilities)];
    return hay.some((v) => typeof v === 'string' && v.toLowerCase().includes(q));
  }

  function renderRoutes() {
    const q = state.filter.trim().toLowerCase();
    const routes = state.routes;
    const shown = routes.filter((r) => matches(r, q));
    shown.sort((a, b) => (text(a.prefix) < text(b.prefix) ? -1 : text(a.prefix) > text(b.prefix) ? 1 : (num(a.path_id) ?? 0) - (num(b.path_id) ?? 0)));
    $('routes-count').textContent = q ? `(${shown.length} of ${routes.length})` : `(${routes.length})`;
    note('routes-note', shown.length > LIMITS.routeRows ? `Showing ${LIMITS.routeRows} of ${shown.length} routes; filter to narrow.` : '');
    const rows = shown.slice(0, LIMITS.routeRows).map((r) => {
      const marks = h('td', {}, h('span', { class: 'badge mark-best', title: 'in the Loc-RIB: the path this node chose' }, '★ best'));
      if (r.stale === true) marks.append(h('span', { class: 'badge mark-stale', title: 'kept while its peer restarts' }, 'stale'));
      const sig = r.signed ? `origin ✓ · ${num(r.path_signatures) ?? 0} path` : 'unsigned';
      return h(
        'tr',
        { data: { prefix: r.prefix } },
        marks,
        h('td', { class: 'mono' }, r.prefix),
        h('td', { class: 'wrap' }, r.agent),
        asPathCell(r.as_path),
        h('td', { class: 'mono', title: r.peer || 'originated by this node' }, r.peer ? short(r.peer) : 'this node'),
        h('td', { class: 'num' }, num(r.local_pref) ?? ''),
        h('td', { class: 'num' }, num(r.med) ?? ''),
        h('td', { class: 'wrap' }, arr(r.communities).map(text).join(', ')),
        h('td', { class: 'wrap' }, arr(r.capabilities).map(text).join(', ')),
        h('td', {}, sig),
      );
    });
    $('routes-table').tBodies[0].replaceChildren(...rows);
  }

  function renderInflight() {
    const calls = state.inflight;
    $('inflight-count').textContent = `(${calls.length})`;
    note('inflight-note', calls.length > LIMITS.inflightRows ? `Showing ${LIMITS.inflightRows} of ${calls.length} calls.` : '');
    const rows = calls.slice(0, LIMITS.inflightRows).map((c) =>
      h(
        'tr',
        {},
        h('td', { class: 'mono', title: c.call_id }, short(c.call_id)),
        h('td', { class: 'mono' }, c.target),
        h('td', { class: 'mono', title: c.from || 'the local MCP front' }, c.from ? short(c.from) : 'MCP front'),
        h('td', { class: 'mono', title: c.to || 'an agent on this node' }, c.to ? short(c.to) : 'local agent'),
        h('td', {}, c.agent || ''),
        h('td', { class: 'num' }, dur(num(c.age_ms))),
        h('td', { class: 'num' }, dur(num(c.deadline_in_ms))),
        h('td', { class: 'num' }, num(c.retries) ?? ''),
      ),
    );
    $('inflight-table').tBodies[0].replaceChildren(...rows);
  }

  function renderRecent() {
    const list = $('recent-list');
    if (state.recent === undefined) return;
    if (state.recent === null) {
      $('recent-count').textContent = '';
      note('recent-note', 'Not available: this node does not keep recent call traces (no /v1/calls/recent).');
      list.replaceChildren();
      return;
    }
    const calls = state.recent;
    $('recent-count').textContent = `(${calls.length})`;
    let msg = calls.length === 0 ? 'No call has finished here recently.' : '';
    if (calls.length > LIMITS.recentCalls) msg = `Showing ${LIMITS.recentCalls} of ${calls.length} calls.`;
    if (state.recentError) msg = `Not updated: ${text(state.recentError)}`;
    note('recent-note', msg);
    const items = calls.slice(0, LIMITS.recentCalls).map((c) => {
      const outcome = text(c.outcome);
      const ok = outcome === 'ok';
      const finished = num(c.finished_ms);
      const route = [c.from ? `from ${short(c.from)}` : 'from the MCP front', c.to ? `to ${short(c.to)}` : c.agent ? `to agent ${text(c.agent)}` : ''];
      const head = h(
        'div',
        { class: 'trace-head' },
        h('span', { class: 'badge ' + (ok ? 'outcome-ok' : 'outcome-bad') }, outcome || '?'),
        h('span', { class: 'dim' }, c.op || ''),
        h('span', { class: 'mono target' }, c.target),
        c.tool ? h('span', { class: 'mono' }, c.tool) : null,
        h('span', { class: 'num' }, micros(num(c.elapsed_us))),
        h('span', { class: 'dim' }, route.filter(Boolean).join(' ')),
        finished !== null ? h('span', { class: 'dim' }, clock(new Date(finished))) : null,
        h('span', { class: 'dim mono', title: `call ${text(c.call_id)} · trace ${text(c.trace_id)}` }, `trace ${short(c.trace_id)}`),
      );
      const hops = arr(c.trace);
      const ol = h('ol', { class: 'hops' });
      for (const hop of hops.slice(0, LIMITS.traceHops)) {
        const asn = hop && isAsn(hop.asn) ? hop.asn : '?';
        ol.append(
          h(
            'li',
            { class: 'hop', title: hop && hop.node ? `node ${text(hop.node)}` : '' },
            h(
              'span',
              { class: 'pill' },
              h('span', { class: 'asn' }, `AS ${asn}`),
              h('span', { class: 'mono dim' }, hop && hop.node ? short(hop.node) : ''),
              h('span', { class: 'num' }, micros(num(hop && hop.elapsed_us))),
            ),
          ),
        );
      }
      if (hops.length > LIMITS.traceHops) ol.append(h('li', { class: 'hop dim' }, `+${hops.length - LIMITS.traceHops} hops`));
      return h('li', { class: 'trace', data: { call: c.call_id, op: c.op } }, head, ol);
    });
    list.replaceChildren(...items);
  }

  // ---- the topology graph --------------------------------------------------------

  /** ASes and links from the peers and the Loc-RIB's AS paths; null before status. */
  function buildGraph(status, peers, routes) {
    const me = status && isAsn(status.asn) ? status.asn : null;
    if (me === null) return null;
    const adj = new Map();
    const info = new Map();
    const node = (a) => {
      if (!info.has(a)) {
        info.set(a, { origin: 0, peer: false, up: false });
        adj.set(a, new Set());
      }
      return info.get(a);
    };
    const link = (a, b) => {
      if (a === b) return; // prepending
      node(a);
      node(b);
      adj.get(a).add(b);
      adj.get(b).add(a);
    };
    node(me);
    for (const p of peers) {
      if (!isAsn(p.asn) || p.asn === 0 || p.asn === me) continue;
      const n = node(p.asn);
      n.peer = true;
      n.up = n.up || p.state === 'established';
      link(me, p.asn);
    }
    for (const r of routes) {
      let prev = me;
      for (const a of arr(r.as_path).slice(0, LIMITS.pathHops)) {
        if (!isAsn(a)) break;
        link(prev, a);
        prev = a;
      }
      node(prev).origin += 1;
    }
    // The ASes nearest this node, breadth first, lowest ASN first.
    const depth = new Map([[me, 0]]);
    const parent = new Map();
    const order = [me];
    for (let i = 0; i < order.length && order.length < LIMITS.graphAses; i++) {
      const a = order[i];
      for (const b of [...adj.get(a)].sort((x, y) => x - y)) {
        if (order.length >= LIMITS.graphAses) break;
        if (depth.has(b)) continue;
        depth.set(b, depth.get(a) + 1);
        parent.set(b, a);
        order.push(b);
      }
    }
    const edges = [];
    for (const a of order) {
      for (const b of adj.get(a)) {
        if (a < b && depth.has(b)) edges.push([a, b, parent.get(b) === a || parent.get(a) === b]);
      }
    }
    edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    return { me, order, depth, parent, info, edges, total: info.size };
  }

  /**
   * A tidy tree: leaves take slots in turn, a parent sits between its first
   * and last child. Up to RADIAL_LEAVES leaves it runs left to right (depth
   * is the column); past that it is drawn radially around this node, so a
   * wide fan-out stays compact. Each position carries where its label goes.
   */
  const RADIAL_LEAVES = 12;
  function layout(g) {
    const kids = new Map(g.order.map((a) => [a, []]));
    for (const a of g.order) if (g.parent.has(a)) kids.get(g.parent.get(a)).push(a);
    const slot = new Map();
    let leaves = 0;
    const place = (a) => {
      const k = kids.get(a);
      if (k.length === 0) {
        slot.set(a, leaves++);
        return;
      }
      k.forEach(place);
      slot.set(a, (slot.get(k[0]) + slot.get(k[k.length - 1])) / 2);
    };
    place(g.me);
    let maxDepth = 0;
    for (const a of g.order) maxDepth = Math.max(maxDepth, g.depth.get(a));
    const pos = new Map();
    if (leaves <= RADIAL_LEAVES) {
      const COL = 170;
      const ROW = 64;
      for (const a of g.order) {
        const below = a === g.me ? 40 : 35;
        pos.set(a, { x: 70 + g.depth.get(a) * COL, y: 44 + slot.get(a) * ROW, lx: 0, ly: below, anchor: 'middle' });
      }
      return { pos, width: 140 + maxDepth * COL, height: 100 + Math.max(0, leaves - 1) * ROW };
    }
    // Radial: ring d at d * gap, wide enough for every leaf 40 px apart on
    // the first ring; labels point outwards.
    const gap = Math.max(150, (leaves * 40) / (2 * Math.PI));
    const LABEL = 130;
    const c = maxDepth * gap + LABEL;
    for (const a of g.order) {
      const d = g.depth.get(a);
      const t = -Math.PI / 2 + (2 * Math.PI * slot.get(a)) / leaves;
      const x = c + Math.cos(t) * d * gap;
      const y = c + Math.sin(t) * d * gap;
      if (a === g.me) {
        pos.set(a, { x, y, lx: 0, ly: 40, anchor: 'middle' });
      } else {
        // Along the ray, never upside down.
        const deg = (t * 180) / Math.PI;
        const right = Math.cos(t) >= 0;
        pos.set(a, { x, y, lx: right ? 24 : -24, ly: 4, anchor: right ? 'start' : 'end', rot: right ? deg : deg + 180 });
      }
    }
    return { pos, width: 2 * c, height: 2 * c };
  }

  function kindOf(g, a) {
    if (a === g.me) return 'me';
    const n = g.info.get(a);
    if (n.peer) return n.up ? 'peer' : 'down';
    return 'remote';
  }

  function renderGraph() {
    const g = buildGraph(state.status, state.peers, state.routes);
    if (!g) return;
    const key = JSON.stringify([g.order.map((a) => [a, kindOf(g, a), g.info.get(a).origin]), g.edges, g.total]);
    if (key === state.graphKey) return;
    state.graphKey = key;
    $('graph-count').textContent = `(${g.total} AS${g.total === 1 ? '' : 'es'})`;
    note(
      'graph-note',
      g.total > g.order.length
        ? `Showing the ${g.order.length} ASes nearest this node of ${g.total} (the graph is capped at ${LIMITS.graphAses}).`
        : '',
    );
    const { pos, width, height } = layout(g);
    const root = $('graph');
    root.setAttribute('viewBox', `0 0 ${width} ${height}`);
    root.setAttribute('width', String(width));
    root.setAttribute('height', String(height));
    const lines = svg('g', { class: 'edges' });
    for (const [a, b, tree] of g.edges) {
      const p = pos.get(a);
      const q = pos.get(b);
      if (tree) {
        lines.append(svg('line', { class: 'edge', x1: p.x, y1: p.y, x2: q.x, y2: q.y }));
      } else {
        // A link outside the tree: bowed, so it does not hide behind others.
        const cx = (p.x + q.x) / 2 + (q.y - p.y) * 0.25;
        const cy = (p.y + q.y) / 2 - 28 - Math.abs(q.x - p.x) * 0.1;
        lines.append(svg('path', { class: 'edge cross', d: `M ${p.x} ${p.y} Q ${cx} ${cy} ${q.x} ${q.y}` }));
      }
    }
    const dots = svg('g', { class: 'nodes' });
    for (const a of g.order) {
      const p = pos.get(a);
      const kind = kindOf(g, a);
      const n = g.info.get(a);
      const what = { me: 'this node', peer: 'a direct peer', down: 'a direct peer, not established', remote: `${g.depth.get(a)} AS hops away` }[kind];
      const tip = `AS ${a}: ${what}; ${n.origin} route${n.origin === 1 ? '' : 's'} in the Loc-RIB originated here`;
      const node = svg(
        'g',
        { class: `as-node ${kind}`, 'data-asn': a, transform: `translate(${p.x} ${p.y})`, tabindex: 0 },
        svg('title', {}, tip),
        svg('circle', { r: kind === 'me' ? 22 : 17 }),
        svg('text', { class: 'count', y: 4 }, n.origin ? String(n.origin) : ''),
        svg(
          'text',
          { class: 'label', x: p.lx, y: p.ly, 'text-anchor': p.anchor, transform: `rotate(${(p.rot || 0).toFixed(1)})` },
          `AS ${a}`,
        ),
      );
      node.addEventListener('click', () => setFilter(String(a)));
      node.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') setFilter(String(a));
      });
      dots.append(node);
    }
    root.replaceChildren(lines, dots);
  }

  function setFilter(q) {
    const input = $('route-filter');
    input.value = q;
    state.filter = q;
    renderRoutes();
    $('routes').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  // ---- start -------------------------------------------------------------------------

  function start() {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token-input').value.trim();
      if (!TOKEN_RE.test(t)) {
        $('login-why').textContent = 'That is not an admin token: 16 to 256 printable characters, no spaces.';
        return;
      }
      $('token-input').value = '';
      token = t;
      store(TOKEN_KEY, t);
      schedule(0);
    });
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      $('pause').textContent = state.paused ? 'Resume' : 'Pause';
      if (!state.paused) schedule(0);
      else $('updated').textContent = state.lastOk ? `paused; updated ${clock(state.lastOk)}` : 'paused';
    });
    $('route-filter').addEventListener('input', (ev) => {
      state.filter = ev.target.value.slice(0, 200);
      renderRoutes();
    });
    $('filter-clear').addEventListener('click', () => setFilter(''));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && token && !state.paused) schedule(0);
    });

    const fromUrl = tokenFromFragment();
    if (fromUrl !== undefined) {
      if (TOKEN_RE.test(fromUrl)) store(TOKEN_KEY, fromUrl);
      else {
        showLogin('The address carried something that is not an admin token.');
        return;
      }
    }
    const saved = recall(TOKEN_KEY);
    if (saved && TOKEN_RE.test(saved)) {
      token = saved;
      schedule(0);
    } else {
      showLogin("This page shows what the node's admin API answers, which needs the node's admin token.");
    }
  }

  start();
})();
