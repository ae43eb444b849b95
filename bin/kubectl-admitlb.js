#!/usr/bin/env node
// The kubectl plugin binary: kubectl runs `kubectl-admitlb` from the PATH for `kubectl admitlb ...`.
// Runs dist/bin/kubectl-admitlb.js, or the sources in a development checkout (see launch.js).
import { launch } from './launch.js';

await launch('kubectl-admitlb');
