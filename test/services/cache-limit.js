'use strict';
// Child script: prints the CPU block cache's state as FeatureExtractor.cache() reports it at start.
const path = require('node:path');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));
process.stdout.write(JSON.stringify(FeatureExtractor.cache()));
