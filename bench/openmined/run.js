// run.js - OpenMined PSI (@openmined/psi.js 2.x, its WASM build, single-threaded) on
// the sets bench_psi wrote (bench_psi --write-sets DIR): the same USCCs, the same
// client/server roles, so the times compare with bench_psi's rows of the same size.
//
// usage: node run.js --sets DIR --sizes 10x16,12x16 [--module DIR] [--tsv FILE]
//   --module  the folder npm installed @openmined/psi.js into (bench/psi.sh's scratch
//             folder); without it the package is resolved as usual
//
// Mode: reveal-intersection with the Raw setup (the server's whole encrypted set, no
// Bloom filter or GCS), the closest to baygate's membership snapshot (exact tags, the
// client learns which of its items are on the list). fpr 1e-9 is what Raw is told;
// Raw itself has no false positives beyond hash collisions.
// Steps timed (wall, one thread): server setup from the list; client request from the
// asked set (+ serialise); server response (deserialise + process + serialise); client
// intersection (deserialise setup and response + intersect). Every intersection is
// checked against the truth (asked items present in the list); a mismatch exits 1.
'use strict'

const fs = require('fs')
const path = require('path')

function args() {
  const a = { sizes: [], module: null, sets: null, tsv: null }
  const v = process.argv.slice(2)
  for (let i = 0; i < v.length; i++) {
    const k = v[i]
    const next = () => {
      if (i + 1 >= v.length) usage()
      return v[++i]
    }
    if (k === '--sets') a.sets = next()
    else if (k === '--sizes') a.sizes = next().split(',').filter(Boolean)
    else if (k === '--module') a.module = next()
    else if (k === '--tsv') a.tsv = next()
    else usage()
  }
  if (!a.sets || a.sizes.length === 0) usage()
  for (const s of a.sizes) if (!/^\d+x\d+$/.test(s)) usage()
  return a
}

function usage() {
  console.error('usage: node run.js --sets DIR --sizes AxL,... [--module DIR] [--tsv FILE]')
  process.exit(2)
}

function load(module) {
  if (!module) return require('@openmined/psi.js')
  return require(path.join(path.resolve(module), 'node_modules', '@openmined', 'psi.js'))
}

function lines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0)
}

const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9
const now = () => process.hrtime.bigint()

async function main() {
  const a = args()
  const psi = await load(a.module)()
  const version = psi.package.version
  const rows = []
  let failed = false
  for (const size of a.sizes) {
    const list = lines(path.join(a.sets, `${size}.list`))
    const asked = lines(path.join(a.sets, `${size}.asked`))
    const onList = new Set(list)
    const truth = asked.filter((x) => onList.has(x)).length
    console.error(`openmined: ${size}: ${asked.length} asked x ${list.length} listed...`)

    const server = psi.server.createWithNewKey(true)
    const client = psi.client.createWithNewKey(true)

    let t = now()
    const setup = server.createSetupMessage(1e-9, asked.length, list, psi.dataStructure.Raw)
    const setupBytes = setup.serializeBinary()
    const setupS = secs(t)

    t = now()
    const reqBytes = client.createRequest(asked).serializeBinary()
    const requestS = secs(t)

    t = now()
    const respBytes = server.processRequest(psi.request.deserializeBinary(reqBytes)).serializeBinary()
    const responseS = secs(t)

    t = now()
    const inter = client.getIntersection(
      psi.serverSetup.deserializeBinary(setupBytes),
      psi.response.deserializeBinary(respBytes)
    )
    const intersectS = secs(t)

    // The intersection is a list of indexes into the asked set: each must be listed.
    const wrong = inter.filter((i) => !onList.has(asked[i])).length
    const ok = inter.length === truth && wrong === 0
    failed ||= !ok
    client.delete()
    server.delete()
    rows.push({
      size,
      asked: asked.length,
      list: list.length,
      setupS,
      requestS,
      responseS,
      intersectS,
      queryS: requestS + responseS + intersectS,
      setupBytes: setupBytes.length,
      reqBytes: reqBytes.length,
      respBytes: respBytes.length,
      matches: inter.length,
      truth,
      ok
    })
  }

  console.log(`OpenMined psi.js ${version} (WASM, 1 thread), Raw setup, reveal intersection\n`)
  console.log(
    '| asked x list | setup s | request s | response s | intersect s | query s | setup B | request B | response B | matches / truth |'
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    console.log(
      `| ${r.size} | ${r.setupS.toFixed(2)} | ${r.requestS.toFixed(2)} | ${r.responseS.toFixed(2)} | ` +
        `${r.intersectS.toFixed(2)} | ${r.queryS.toFixed(2)} | ${r.setupBytes} | ${r.reqBytes} | ` +
        `${r.respBytes} | ${r.matches}/${r.truth}${r.ok ? '' : ' WRONG'} |`
    )
  }
  if (a.tsv) {
    const head = 'size\tversion\tasked\tlist\tsetup_s\trequest_s\tresponse_s\tintersect_s\tquery_s\tsetup_bytes\trequest_bytes\tresponse_bytes\tmatches\ttruth\n'
    const body = rows
      .map((r) =>
        [r.size, version, r.asked, r.list, r.setupS, r.requestS, r.responseS, r.intersectS,
          r.queryS, r.setupBytes, r.reqBytes, r.respBytes, r.matches, r.truth].join('\t')
      )
      .join('\n')
    fs.writeFileSync(a.tsv, head + body + '\n')
  }
  process.exit(failed ? 1 : 0)
}

main().catch((e) => {
  console.error('openmined:', e && e.stack ? e.stack : e)
  process.exit(1)
})
