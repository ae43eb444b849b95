#!/usr/bin/env node
// Entry point of the admitlb CLI: runs dist/bin/admitlb.js, or src/bin/admitlb.ts in a development
// checkout (see launch.js).
import { launch } from './launch.js';

await launch('admitlb');
