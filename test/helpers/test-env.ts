// Loaded into every test file's process (`node --import ./test/helpers/test-env.ts --test ...`,
// package.json), before any module under test: settings that make mistakes visible.
//
// BETRACE_POISON_REUSED_FRAMES: a Kafka fetch response's memory is overwritten when it is
// given back for use again (src/transport/kafka-socket.ts), so a payload read after that
// is garbage that fails a test, not stale records that look plausible.
process.env.BETRACE_POISON_REUSED_FRAMES ??= '1';
