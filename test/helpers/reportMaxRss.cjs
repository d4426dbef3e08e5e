// Preloaded (node --require) into a CLI run by the reliability tests: reports the process's peak RSS on exit,
// which the parent cannot read once the child is gone.
'use strict';
process.on('exit', () => {
  process.stderr.write(`max-rss-kb ${process.resourceUsage().maxRSS}\n`);
});
