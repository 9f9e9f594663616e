export { closestMatch, editDistance } from './edit-distance.js';
export {
  byteSizeField,
  durationField,
  enumField,
  hostPortField,
  NAME_PATTERN,
  nameField,
  type PathFieldOptions,
  pathField,
} from './fields.js';
export { formatHostPort, type HostPort, isLoopback, parseHostPort } from './host-port.js';
export {
  type ConfigProblem,
  type DeepReadonly,
  deepFreeze,
  fieldPath,
  type LoadConfigOptions,
  loadConfigFile,
  type ParseConfigOptions,
  parseConfigText,
} from './load.js';
export { problem } from './problem.js';
export { asArray, asRecord, isHostPort } from './raw-value.js';
export { parseByteSize, parseDuration } from './units.js';
