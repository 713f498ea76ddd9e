// validate.js FILE - exit 0 iff FILE is a valid OpenAPI document (swagger-parser).
const SwaggerParser = require("@apidevtools/swagger-parser");
SwaggerParser.validate(process.argv[2]).then(
  (api) => console.log(`valid: ${api.info.title} ${api.info.version}`),
  (e) => { console.error(e.message); process.exit(1); });
