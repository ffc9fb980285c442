// Validate a .glb with the Khronos glTF validator (npm gltf-validator): `node validate-gltf.mjs FILE.glb`.
// Prints the report's issue counts as one JSON line; exits 1 when the file has errors.
import { readFileSync } from "node:fs";
import validator from "gltf-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate-gltf.mjs FILE.glb");
  process.exit(2);
}
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
  maxIssues: 100,
  externalResourceFunction: (uri) => Promise.reject(new Error(`external resource ${uri} not allowed`)),
});
const { numErrors, numWarnings, numInfos, numHints, messages } = report.issues;
console.log(JSON.stringify({ numErrors, numWarnings, numInfos, numHints,
  messages: messages.filter((m) => m.severity <= 1).slice(0, 20) }));
process.exit(numErrors ? 1 : 0);
