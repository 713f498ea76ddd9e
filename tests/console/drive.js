// drive.js - drives Debian's chromium (headless, puppeteer-core) through the gateway's web
// console for tests/console_test.sh. Prints one line per check: "PASS|what" or
// "FAIL|what|got ..., expected ...", for the script to count.
//
// node drive.js CONFIG.json, CONFIG holding: chromium, base (the API's origin), key,
// wrong_key, listed (a USCC the peer lists), bad (an invalid one), bad_detail (what
// `baygate uscc check` says of it), own and peer ({city, name}), purposes (the key's),
// stop_file and stopped_file (the script stops the peer when the first appears and
// makes the second when it is down), shots (a folder for screenshots).
"use strict";
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const origin = new URL(cfg.base).origin;
const say = (ok, what, detail) => console.log(ok ? "PASS|" + what : "FAIL|" + what + "|" + detail);
const eq = (what, got, want) => say(got === want, what, `got '${got}', expected '${want}'`);
const has = (what, got, want) =>
  say(typeof got === "string" && got.includes(want), what, `got '${got}', expected it to contain '${want}'`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const browser = await puppeteer.launch({
    executablePath: cfg.chromium,
    headless: true,
    // --no-sandbox: the suite may run as root in a container, where chromium's sandbox
    // cannot start; the page is our own console on loopback.
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--lang=zh-CN"],
  });
  const outside = [];
  const problems = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1366, height: 900 });
    await page.setRequestInterception(true);
    page.on("request", (req) => {
      const u = req.url();
      if (!u.startsWith(origin + "/")) {
        outside.push(u);
        req.abort();
      } else req.continue();
    });
    // A CSP violation or a script error shows in the console or as a page error.
    page.on("console", (m) => {
      if (m.type() === "error" && !/401|Unauthorized|400|Bad Request/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    // Every request of the console's that failed, with its address (a missing file).
    page.on("response", (res) => {
      if (res.status() >= 400 && !res.url().includes("/v1/")) problems.push(res.status() + " " + res.url());
    });
    const text = (sel) => page.$eval(sel, (e) => e.textContent).catch(() => null);
    const visible = (sel) => page.$eval(sel, (e) => !e.hidden).catch(() => null);
    const shot = (n) => page.screenshot({ path: path.join(cfg.shots, n + ".png"), fullPage: true });
    // Waits for fn (run in the page) to be true; its last value either way.
    const until = async (fn, arg, ms = 15000) => {
      try {
        await page.waitForFunction(fn, { timeout: ms, polling: 100 }, arg);
        return true;
      } catch (e) {
        return false;
      }
    };

    // ---------------------------------------------------------------- sign in
    await page.goto(cfg.base + "/console/", { waitUntil: "load" });
    eq("1. the console opens on its sign-in form", await visible("#page-signin"), true);
    await page.type("#signin-key", cfg.wrong_key);
    await page.click("#signin-submit");
    await until(() => document.getElementById("signin-error").textContent !== "");
    has("2. a wrong key shows the API's problem", await text("#signin-error"), "The API key is not valid");
    has("2. ... and why", await text("#signin-error"), "the key is not one this gateway issued");
    eq("2. ... and stays on the sign-in form", await visible("#page-status"), false);
    eq("2. ... keeping no key", await page.evaluate(() => sessionStorage.getItem("baygate.apikey")), null);
    await shot("1-wrong-key");

    await page.$eval("#signin-key", (e) => (e.value = ""));
    await page.type("#signin-key", cfg.key);
    await page.click("#signin-submit");
    await until(() => !document.getElementById("page-status").hidden);
    eq("3. the right key opens the status page", await visible("#page-status"), true);
    has("3. ... naming the application", await text("#whoami"), "lender-a");
    eq("3. the key is kept in sessionStorage", await page.evaluate(() => sessionStorage.getItem("baygate.apikey")), cfg.key);
    eq("3. ... and not in localStorage", await page.evaluate(() => localStorage.length), 0);

    // ---------------------------------------------------------------- status
    // The peer is "reachable" once it has answered; refresh until it has (or time out).
    const peerSel = `#status-peers tr[data-peer="${cfg.peer.city}"]`;
    for (let i = 0; i < 30; i++) {
      await until((s) => document.querySelector(s) !== null, peerSel, 5000);
      if ((await page.$eval(peerSel, (e) => e.dataset.reachable).catch(() => null)) === "true") break;
      await sleep(500);
      await page.click("#status-refresh");
      await sleep(200);
    }
    const status = await (await fetch(cfg.base + "/v1/status", { headers: { Authorization: "Bearer " + cfg.key } })).json();
    has("4. status: our city's code and name", await text('#status-info tr[data-field="city"]'), `${cfg.own.city} ${cfg.own.name}`);
    has("4. status: the peer's code and name", await text(peerSel), `${cfg.peer.city} ${cfg.peer.name}`);
    has("4. status: the peer is reachable", await text(peerSel), "reachable 可达");
    has("4. status: the certificate's expiry and days left", await text('#status-info tr[data-field="certificate"]'),
      `${status.certificate.not_after} (${status.certificate.days_left} days left)`);
    has("4. status: the CRL's next update", await text('#status-info tr[data-field="crl"]'), status.crl.next_update);
    has("4. status: the standing", await text('#status-info tr[data-field="standing"]'), status.standing || "unknown");
    for (const l of status.lists) {
      const row = await page.$$eval(`#status-lists tr[data-list="${l.list}"] td`, (tds) => tds.map((t) => t.textContent));
      eq(`4. status: list ${l.list} with its epoch and entries`, JSON.stringify(row.slice(1, 3)),
        JSON.stringify([String(l.epoch), String(l.entries)]));
    }
    has("4. status: the evidence log's size", await text("#status-evidence"), "Entries" + status.evidence.size);
    const wit = await text("#status-witnesses");
    say(wit !== null && (status.evidence.witnesses.length === 0 ? wit.includes("no witness") :
      status.evidence.witnesses.every((w) => wit.includes(w.witness))), "4. status: the witnesses", `got '${wit}'`);
    await shot("2-status");

    // ---------------------------------------------------------------- lookup
    await page.click("#nav-lookup");
    const opts = await page.$$eval("#lookup-purpose option", (os) => os.map((o) => o.value));
    eq("5. the purposes offered are the key's", JSON.stringify(opts), JSON.stringify(cfg.purposes));
    const lookup = async (uscc) => {
      await page.$eval("#lookup-uscc", (e) => (e.value = ""));
      await page.type("#lookup-uscc", uscc);
      await page.select("#lookup-purpose", "supervision");
      await page.click("#lookup-submit");
      await until(() => {
        const s = document.getElementById("lookup-summary").textContent;
        return document.getElementById("lookup-submit").disabled === false && !s.startsWith("asking");
      }, undefined, 30000);
    };
    const cell = (city, what) => text(`.card[data-city="${city}"] tr[${what}] td:last-child`);
    await lookup(cfg.listed);
    has("6. all cities answered", await text("#lookup-summary"), "2 of 2 cities answered");
    has("6. the peer's card names it (Chinese renders)", await text(`.card[data-city="${cfg.peer.city}"] h3`), cfg.peer.name);
    has("6. the peer lists it as seriously dishonest", await cell(cfg.peer.city, 'data-list="serious-dishonesty"'), "listed 在名单上");
    has("6. ... not as abnormally operating", await cell(cfg.peer.city, 'data-list="abnormal-operation"'), "not listed");
    has("6. the peer's grade on both scales", await cell(cfg.peer.city, 'data-field="grade"'), "grade B on " + cfg.peer.name + "'s scale ABCD; common scale 2 (rank 2)");
    has("6. ... valid", await cell(cfg.peer.city, 'data-field="validity"'), "valid 有效");
    has("6. ... attested, in words", await cell(cfg.peer.city, 'data-field="attestation"'), "attested 已验证");
    has("6. our own card is marked ours", await text(`.card[data-city="${cfg.own.city}"] h3`), "本市 our city");
    has("6. we do not list it", await cell(cfg.own.city, 'data-list="serious-dishonesty"'), "not listed");
    has("6. our grade on both scales", await cell(cfg.own.city, 'data-field="grade"'), "grade A on " + cfg.own.name + "'s scale ABCD; common scale 1 (rank 1)");
    has("6. ... said to be our own record", await cell(cfg.own.city, 'data-field="attestation"'), "own record");
    eq("6. no city is said not to have answered", await page.$$eval(".card.no-answer", (c) => c.length), 0);
    await shot("3-lookup");

    await lookup(cfg.bad);
    has("7. an invalid USCC: the API's error beside the field", await text("#lookup-uscc-error"), cfg.bad_detail);
    eq("7. ... and no cards", await page.$$eval(".card", (c) => c.length), 0);
    await shot("4-invalid");

    // ---------------------------------------------------------------- peer down
    fs.writeFileSync(cfg.stop_file, "");
    for (let i = 0; i < 200 && !fs.existsSync(cfg.stopped_file); i++) await sleep(100);
    await lookup(cfg.listed);
    const row = await text(`.card[data-city="${cfg.peer.city}"] tr[data-field="no-answer"]`);
    has("8. the stopped peer: 'this city did not answer' with a reason", row, "this city did not answer 未应答: ");
    say(row !== null && row.replace(/.*未应答: /, "").trim().length > 0, "8. ... the reason is not empty", `got '${row}'`);
    has("8. the answer says it is incomplete", await text("#lookup-summary"), "1 of 2 cities answered — INCOMPLETE");
    has("8. our own city still answers", await cell(cfg.own.city, 'data-field="grade"'), "grade A");
    await shot("5-peer-down");

    await page.click("#nav-signout");
    eq("9. signing out forgets the key", await page.evaluate(() => sessionStorage.getItem("baygate.apikey")), null);
  } finally {
    await browser.close();
  }
  eq("10. no request left the gateway's origin", JSON.stringify(outside), "[]");
  eq("10. no script error nor CSP violation", JSON.stringify(problems), "[]");
}

main().catch((e) => {
  say(false, "the browser run", String(e && e.stack ? e.stack : e));
  process.exit(1);
});
