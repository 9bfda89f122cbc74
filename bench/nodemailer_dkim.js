// Peer for the signed-pipeline benchmark: nodemailer with DKIM (RSA-2048)
// sending one message per recipient to the same sink, a pool of connections.
const nodemailer = require("nodemailer");
const fs = require("fs");

async function main() {
  const [port, n, keyFile] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
  const transport = nodemailer.createTransport({
    host: "127.0.0.1", port, secure: false, ignoreTLS: true, pool: true, maxConnections: 8, maxMessages: Infinity,
    dkim: { domainName: "example.com", keySelector: "bench", privateKey: fs.readFileSync(keyFile, "utf8") },
  });
  const body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempo\n").repeat(50);
  const start = process.hrtime.bigint();
  const inflight = [];
  for (let i = 0; i < n; i++) {
    inflight.push(transport.sendMail({ from: "Example <noreply@example.com>", to: `user${i}@example.com`,
                                       subject: `Index change ${i}`, text: body }));
    if (inflight.length >= 64) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  transport.close();
  console.log(JSON.stringify({ bench: "nodemailer_dkim", messages: n, seconds: +secs.toFixed(2), per_second: Math.round(n / secs) }));
}
main().catch((e) => { console.error(e); process.exit(1); });
