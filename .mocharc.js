'use strict';
module.exports = {
  spec: ['test/*.test.js'],
  require: ['test/fixtures.js'],
  timeout: 120000,
  slow: 2000,
  'node-option': ['expose-gc'],
};
