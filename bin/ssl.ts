#!/usr/bin/env node
import { main } from '../src/cli';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    // main() handles every error itself; reaching here is a bug in the boundary.
    console.error(e);
    process.exitCode = 70;
  },
);
