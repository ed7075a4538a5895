// A companion: a long-running background task supervised next to the web workers.
// arb runs `run()` in its own process; it is restarted with backoff if it crashes.
export async function run() {
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    console.log(`jobs: tick ${n} (pid ${process.pid})`);
  }, 5000);
  await new Promise((resolve) => {
    process.once('SIGTERM', () => {
      clearInterval(timer);
      console.log('jobs: draining and exiting');
      resolve();
    });
  });
}
