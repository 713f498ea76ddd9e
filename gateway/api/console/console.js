/*
 * console.js - the gateway's web console: sign in with an API key, the status page, one
 * enterprise across every city. It asks only this gateway's own API (same origin) and
 * writes every piece of data with textContent, never as markup.
 */
"use strict";

(function () {
  const KEY = "baygate.apikey"; // sessionStorage: gone when the tab closes
  const LIST_NAMES = {
    "serious-dishonesty": "严重失信 serious dishonesty",
    "abnormal-operation": "经营异常 abnormal operation",
  };
  let scope = null; // GET /v1/key of the signed-in key

  const $ = (id) => document.getElementById(id);

  /* An element with text (never parsed as markup) and optional class and attributes. */
  function el(tag, text, cls, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  /* GET path with the key; resolves to {status, body} (body parsed JSON, or null). A
   * problem (RFC 9457) is returned as the body of a non-2xx status for the caller to show. */
  async function api(path) {
    const key = sessionStorage.getItem(KEY) || "";
    let res;
    try {
      res = await fetch(path, {
        headers: { Authorization: "Bearer " + key, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (e) {
      return { status: 0, body: { title: "The gateway did not answer", detail: String(e) } };
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = { title: "Unreadable answer", detail: "HTTP " + res.status + " without JSON" };
    }
    return { status: res.status, body: body };
  }

  /* A problem's words: its detail, after its title. */
  function problemText(p) {
    if (!p) return "no answer";
    const t = p.title || "Error";
    return p.detail ? t + ": " + p.detail : t;
  }

  function show(page) {
    for (const p of ["signin", "status", "lookup"]) $("page-" + p).hidden = p !== page;
    $("nav").hidden = page === "signin";
  }

  // ------------------------------------------------------------------ sign in
  async function signIn(ev) {
    ev.preventDefault();
    const key = $("signin-key").value.trim();
    $("signin-error").textContent = "";
    sessionStorage.setItem(KEY, key);
    const r = await api("/v1/key");
    if (r.status !== 200) {
      sessionStorage.removeItem(KEY);
      $("signin-error").textContent = "登录失败 Sign-in failed — " + problemText(r.body);
      return;
    }
    $("signin-key").value = "";
    await enter(r.body);
  }

  async function enter(s) {
    scope = s;
    $("whoami").textContent = "应用 Application: " + s.application;
    const sel = $("lookup-purpose");
    clear(sel);
    for (const p of s.purposes) sel.appendChild(el("option", p, null, { value: p }));
    show("status");
    await loadStatus();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    scope = null;
    clear($("status-body"));
    clear($("lookup-results"));
    $("lookup-summary").textContent = "";
    show("signin");
  }

  // ------------------------------------------------------------------ status
  function row(tbody, cells, attrs) {
    const tr = el("tr", null, null, attrs);
    for (const c of cells) {
      if (c instanceof Node) {
        const td = el("td");
        td.appendChild(c);
        tr.appendChild(td);
      } else {
        tr.appendChild(el("td", c));
      }
    }
    tbody.appendChild(tr);
    return tr;
  }

  function table(head, attrs) {
    const t = el("table", null, null, attrs);
    const tr = el("tr");
    for (const h of head) tr.appendChild(el("th", h));
    const thead = el("thead");
    thead.appendChild(tr);
    t.appendChild(thead);
    const tb = el("tbody");
    t.appendChild(tb);
    return [t, tb];
  }

  function when(ms) {
    return ms > 0 ? new Date(ms).toISOString().replace(".000Z", "Z") : "never";
  }

  /* "2027-01-01T00:00:00Z (123 days left)", with a warning in words when it is near. */
  function expiry(at, x) {
    if (!x || x[at] === null || x[at] === undefined)
      return el("span", "unknown 未知", "warn", { "data-warning": "true" });
    const left = x.days_left < 0 ? "EXPIRED " + -x.days_left + " days ago 已过期" : x.days_left + " days left";
    const s = el("span", x[at] + " (" + left + ")" + (x.warning ? " — WARNING: renew soon 即将到期" : ""),
      x.warning || x.days_left < 0 ? "warn" : "good", { "data-warning": String(!!x.warning) });
    return s;
  }

  function renderStatus(s) {
    const body = $("status-body");
    clear(body);
    const [info, ib] = table(["", ""], { id: "status-info" });
    row(ib, ["城市 City", s.city + " " + s.name], { "data-field": "city" });
    row(ib, ["版本 Version", s.version + " (up " + s.uptime_s + " s)"]);
    row(ib, ["名册 Roster serial", String(s.roster_serial)]);
    row(ib, ["地位 Standing", s.standing || "unknown"], { "data-field": "standing" });
    row(ib, ["证书 Certificate expires", expiry("not_after", s.certificate)], { "data-field": "certificate" });
    row(ib, ["CRL next update", expiry("next_update", s.crl)], { "data-field": "crl" });
    row(ib, ["证书指纹 Certificate SHA-256", el("code", s.cert_sha256)]);
    body.appendChild(info);

    body.appendChild(el("h3", "名单 Lists"));
    const [lt, lb] = table(["List", "Epoch", "Entries", "Published"], { id: "status-lists" });
    for (const l of s.lists || [])
      row(lb, [LIST_NAMES[l.list] || l.list, String(l.epoch), String(l.entries), l.published], { "data-list": l.list });
    body.appendChild(lt);

    body.appendChild(el("h3", "对端城市 Peers"));
    const [pt, pb] = table(["City", "Endpoint", "Reachable", "Last answer"], { id: "status-peers" });
    for (const p of s.peers || []) {
      const reach = p.reachable
        ? el("span", "reachable 可达 (" + (p.latency_us / 1000).toFixed(1) + " ms)", "good")
        : el("span", "NOT reachable 不可达: " + (p.error || "no reason given"), "bad");
      row(pb, [p.city + " " + p.name, el("code", p.endpoint), reach, when(p.last_ok_ms)], {
        "data-peer": p.city, "data-reachable": String(!!p.reachable),
      });
    }
    body.appendChild(pt);

    body.appendChild(el("h3", "证据日志 Evidence log"));
    const ev = s.evidence;
    if (!ev) {
      body.appendChild(el("p", "no evidence log", "warn"));
      return;
    }
    const [et, eb] = table(["", ""], { id: "status-evidence" });
    row(eb, ["Entries", String(ev.size)]);
    row(eb, ["Root", el("code", ev.root)]);
    row(eb, ["Signed head", ev.head ? "size " + ev.head.size + " at " + ev.head.time : "none signed yet"]);
    if (ev.head) row(eb, ["Head root", el("code", ev.head.root)]);
    body.appendChild(et);
    const [wt, wb] = table(["Witness", "Cosigned size", "Cosigned at"], { id: "status-witnesses" });
    for (const w of ev.witnesses || []) row(wb, [w.witness, String(w.size), when(w.cosigned_ms)]);
    if (!(ev.witnesses || []).length) row(wb, ["no witness has cosigned yet", "", ""]);
    body.appendChild(wt);
  }

  async function loadStatus() {
    $("status-error").textContent = "";
    const r = await api("/v1/status");
    if (r.status !== 200) {
      $("status-error").textContent = problemText(r.body);
      if (r.status === 401) signOut();
      return;
    }
    renderStatus(r.body);
  }

  // ------------------------------------------------------------------ lookup
  /* Attestation in words: never a bare grade. */
  function attestation(c, g) {
    if (c.own) return "own record 本市数据 (our store, not attested)";
    if (!g.valid) return "expired 已过期 (valid until " + g.valid_until + ")";
    if (g.attested) return "attested 已验证";
    return "unattested 未验证: " + (g.attestation_error || "no attestation");
  }

  function gradeText(c, g) {
    return "grade " + g.grade + " on " + c.name + "'s scale " + g.scale + "; common scale " +
      g.common_grade + " (rank " + g.common_rank + ")";
  }

  function validity(g) {
    return (g.valid ? "valid 有效" : "expired 已过期") + ", evaluated " + g.evaluated_at + ", valid until " + g.valid_until;
  }

  /* Why a city gave no answer, or null if it answered everything. */
  function failure(c) {
    if (c.own) return null;
    const errs = (c.lists || []).filter((l) => l.status === "error").map((l) => l.error);
    if (c.grade_status === "error") errs.push(c.grade_error);
    if (!errs.length) return null;
    return [...new Set(errs.map((e) => e || "no reason given"))].join("; ");
  }

  function card(c) {
    const why = failure(c);
    const d = el("div", null, why ? "card no-answer" : "card", { "data-city": c.city });
    const h = el("h3", c.name + " (" + c.city + ")");
    if (c.own) h.appendChild(el("span", "本市 our city", "tag"));
    d.appendChild(h);
    const [t, tb] = table(["", ""]);
    if (why) row(tb, ["", "this city did not answer 未应答: " + why], { "data-field": "no-answer", class: "bad" });
    if (c.own) row(tb, ["Enterprise", c.found ? c.enterprise_name : "not in our store 本市无记录"]);
    for (const l of c.lists || []) {
      let v;
      if (l.status === "error") v = el("span", "no answer: " + (l.error || "no reason given"), "bad");
      else if (l.status === "listed")
        v = el("span", "listed 在名单上" + (l.listed_at ? " since " + l.listed_at : "") +
          (l.reason ? " — " + l.reason : "") + (l.in_force === false ? " (no longer in force)" : ""), "bad");
      else if (l.status === "not in scope")
        v = el("span", "not asked: this key does not cover this list 本密钥无权查询此名单", "warn");
      else v = el("span", "not listed 不在名单上", "good");
      const tr = row(tb, [LIST_NAMES[l.list] || l.list, v], { "data-list": l.list });
      tr.lastChild.setAttribute("data-status", l.status);
    }
    const g = c.grade;
    if (c.grade_status === "not in scope") {
      row(tb, ["评级 Grade", el("span", "not asked: this key does not cover grades 本密钥无权查询评级", "warn")],
        { "data-field": "grade" });
    } else if (!c.own && c.grade_status === "error") {
      row(tb, ["评级 Grade", el("span", "no answer: " + (c.grade_error || "no reason given"), "bad")], { "data-field": "grade" });
    } else if (!g) {
      row(tb, ["评级 Grade", "not graded 无评级"], { "data-field": "grade" });
    } else {
      row(tb, ["评级 Grade", gradeText(c, g)], { "data-field": "grade" });
      row(tb, ["有效期 Validity", validity(g)], { "data-field": "validity" });
      row(tb, ["证明 Attestation", attestation(c, g)], { "data-field": "attestation" });
    }
    d.appendChild(t);
    return d;
  }

  async function lookup(ev) {
    ev.preventDefault();
    const uscc = $("lookup-uscc").value.trim();
    const purpose = $("lookup-purpose").value;
    for (const id of ["lookup-uscc-error", "lookup-error", "lookup-summary"]) $(id).textContent = "";
    $("lookup-summary").className = "";
    clear($("lookup-results"));
    $("lookup-submit").disabled = true;
    $("lookup-summary").textContent = "asking every city… 正在查询";
    const r = await api("/v1/enterprises/" + encodeURIComponent(uscc) + "?purpose=" + encodeURIComponent(purpose));
    $("lookup-submit").disabled = false;
    $("lookup-summary").textContent = "";
    if (r.status !== 200) {
      const p = r.body || {};
      // A bad code is the field's fault: say so beside it.
      if (r.status === 400 && /uscc/.test(p.type || "")) $("lookup-uscc-error").textContent = problemText(p);
      else $("lookup-error").textContent = problemText(p);
      if (r.status === 401) signOut();
      return;
    }
    const cities = r.body.cities || [];
    const failed = cities.filter((c) => failure(c) !== null);
    const sum = $("lookup-summary");
    sum.textContent = r.body.uscc + " for " + r.body.purpose + ": " + (cities.length - failed.length) + " of " +
      cities.length + " cities answered" + (failed.length ? " — INCOMPLETE 结果不完整" : " 全部应答");
    sum.className = failed.length ? "incomplete" : "";
    const box = el("div", null, "cards");
    for (const c of cities) box.appendChild(card(c));
    $("lookup-results").appendChild(box);
  }

  // ------------------------------------------------------------------ start
  document.addEventListener("DOMContentLoaded", async () => {
    $("signin-form").addEventListener("submit", signIn);
    $("lookup-form").addEventListener("submit", lookup);
    $("nav-status").addEventListener("click", () => { show("status"); loadStatus(); });
    $("nav-lookup").addEventListener("click", () => show("lookup"));
    $("nav-signout").addEventListener("click", signOut);
    $("status-refresh").addEventListener("click", loadStatus);
    if (sessionStorage.getItem(KEY)) {
      const r = await api("/v1/key");
      if (r.status === 200) return enter(r.body);
      sessionStorage.removeItem(KEY);
    }
    show("signin");
  });
})();
