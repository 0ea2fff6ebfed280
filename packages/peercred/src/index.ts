export * from './peer-credentials.js'
export * from './sd-notify.js'
export * from './file-lock.js'
export { addonOverride, addonOverrideInEffect, explainMissingAddon, loadNativeAddon } from './addon.js'
