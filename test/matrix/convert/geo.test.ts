import assert from "node:assert/strict";
import { formatGeoUri, parseGeoUri } from "../../../src/matrix/convert/geo.js";

describe("matrix/convert geo", () => {
  it("reads coordinates, uncertainty and an explicit WGS84 datum", () => {
    assert.deepEqual(parseGeoUri("geo:52.5200066,13.4049540;u=12"), {
      lat: 52.5200066,
      lon: 13.404954,
      accuracy: 12,
    });
    assert.deepEqual(parseGeoUri("GEO:-90,180;crs=WGS84;u=3.6"), {
      lat: -90,
      lon: 180,
      accuracy: 4,
    });
    assert.deepEqual(parseGeoUri("geo:1,2,300;u=0;foo=bar"), { lat: 1, lon: 2, accuracy: 0 });
  });

  it("rejects what is not a valid WGS84 geo URI", () => {
    const bad = [
      "",
      "geo:",
      "geo:1",
      "geo:1,",
      "geo:1;2",
      "geo:+1,2",
      "geo:1.,2",
      "geo:1e3,2",
      "geo:NaN,0",
      "geo:90.0001,0",
      "geo:0,-180.5",
      "geo:1,2;crs=nad27",
      "geo:1,2;u=5;crs=wgs84",
      "geo:1,2;u=-1",
      "geo:1,2;u=",
      "geo:1,2;u=1;u=2",
      "geo:1,2;bad param=1",
      "geo:1,2\n",
      " geo:1,2",
      `geo:1.${"1".repeat(600)},2`,
    ];
    for (const uri of bad) assert.equal(parseGeoUri(uri), undefined, uri);
    for (const v of [undefined, null, 5, {}, ["geo:1,2"]]) assert.equal(parseGeoUri(v), undefined);
  });

  it("writes URIs that read back to the same point", () => {
    const point = { lat: -33.8567844, lon: 151.2152967, accuracy: 25 };
    assert.equal(formatGeoUri(point), "geo:-33.8567844,151.2152967;u=25");
    assert.deepEqual(parseGeoUri(formatGeoUri(point)), point);
    assert.equal(formatGeoUri({ lat: -0, lon: 0 }), "geo:0,0");
  });
});
