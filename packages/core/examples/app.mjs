// The app launch.mjs serves: a plain request listener, every worker answers with its pid.
export default function app(_req, res) {
  res.end(`hello from ${process.pid}\n`);
}
