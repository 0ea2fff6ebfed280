// Order matters: tsyringe (loaded by @peculiar/x509) checks for Reflect.getMetadata on load.
import './reflect-metadata.js'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

// Sign and generate with Node's own WebCrypto, never a provider another module may have set.
x509.cryptoProvider.set(webcrypto)

/** `@peculiar/x509`, loaded after the Reflect polyfill. Other files import it from here only. */
export { x509, webcrypto }
