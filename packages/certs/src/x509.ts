// Order matters: tsyringe (loaded by @peculiar/x509) checks for Reflect.getMetadata on load.
// @peculiar/x509 registers its algorithms with tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

// Sign and generate with Node's own WebCrypto, never a provider another module may have set.
x509.cryptoProvider.set(webcrypto)

/** `@peculiar/x509`, loaded after the Reflect polyfill. Other files import it from here only. */
export { x509, webcrypto }
