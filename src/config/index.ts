export * from './clipseg_config.js';
export * from './presets.js';
