/**
 * The example stanzas of PROTOCOL.md, copied verbatim except that the shortened base64 values
 * (`BZ2yKq…`) are replaced by deterministic values of the lengths §11.1 requires, since real values
 * never contain `…` (§2).
 */

function bytes(length: number, first: number, seed: number): string {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  b[0] = first;
  return b.toString("base64");
}

export const EC = (seed: number): string => bytes(33, 0x05, seed);
export const KYBER = (seed: number): string => bytes(1569, 0x08, seed);
export const SIG = (seed: number): string => bytes(64, 0x11, seed);
export const CT = (seed: number): string => bytes(48, 0x33, seed);
export const HASH = (seed: number): string => bytes(32, 0x44, seed);

export const SPEC = {
  helloRequest: `<iq type='get' id='h1' from='matrix.bridge.example' to='wa.example'>
  <hello xmlns='urn:interop:core:0' version='0.2' provider='matrix-bridge-example'>
    <feature var='urn:interop:content:0#reply'/>
    <feature var='urn:interop:content:0#reactions'/>
    <feature var='urn:interop:groups:0'/>
  </hello>
</iq>`,
  helloResult: `<iq type='result' id='h1' from='wa.example' to='matrix.bridge.example'>
  <hello xmlns='urn:interop:core:0' version='0.2' session='s-5f1c0e'>
    <feature var='urn:interop:content:0#reply'/>
    <feature var='urn:interop:content:0#reactions'/>
    <feature var='urn:interop:groups:0'/>
    <limits>
      <limit name='max-stanza-bytes' value='262144'/>
      <limit name='max-envelope-bytes' value='32768'/>
      <limit name='max-devices-per-user' value='5'/>
      <limit name='max-image-bytes' value='16777216'/>
    </limits>
    <media-origin>https://wa.example</media-origin>
  </hello>
</iq>`,
  helloRequestNotice: `<message from='wa.example' to='matrix.bridge.example' id='hr-1'>
  <hello-request xmlns='urn:interop:core:0'/>
</message>`,
  ping: `<iq type='get' id='p-1' from='matrix.bridge.example' to='wa.example'><ping xmlns='urn:xmpp:ping'/></iq>`,
  requestCode: `<iq type='set' id='v1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <request-code xmlns='urn:interop:identity:0' phone='+491709876543' channel='sms' lang='de'/>
</iq>`,
  codeSent: `<iq type='result' id='v1' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <code-sent xmlns='urn:interop:identity:0' phone='+491709876543' length='6'
             expires='2025-03-01T12:10:00.000Z' resend-after='60'/>
</iq>`,
  confirmCode: `<iq type='set' id='v2' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <confirm-code xmlns='urn:interop:identity:0' phone='+491709876543' code='482913'/>
</iq>`,
  bound: `<iq type='result' id='v2' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <bound xmlns='urn:interop:identity:0' phone='+491709876543'
         jid='alice=3amatrix.bridge.example@matrix.bridge.example'/>
</iq>`,
  codeInvalid: `<iq type='error' id='v2' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <error type='modify'>
    <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <code-invalid xmlns='urn:interop:errors:0' attempts-left='4'/>
  </error>
</iq>`,
  bindingQuery: `<iq type='get' id='v3' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <binding xmlns='urn:interop:identity:0'/>
</iq>`,
  unbind: `<iq type='set' id='v4' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <unbind xmlns='urn:interop:identity:0'/>
</iq>`,
  unbound: `<message from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example' id='n1'>
  <unbound xmlns='urn:interop:identity:0' phone='+491709876543' reason='rebound'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ7V7J9EQ4W8ZK2R6T3YB5NM' by='wa.example'/>
</message>`,
  profile: `<iq type='set' id='p1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <profile xmlns='urn:interop:identity:0'>
    <handle>alice:matrix.bridge.example</handle>
  </profile>
</iq>`,
  lookup: `<iq type='get' id='d1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <lookup xmlns='urn:interop:discovery:0'>
    <phone>+491701234567</phone>
    <phone>+491705550000</phone>
  </lookup>
</iq>`,
  lookupResult: `<iq type='result' id='d1' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <lookup xmlns='urn:interop:discovery:0'>
    <result phone='+491701234567' status='reachable' jid='491701234567@wa.example'/>
    <result phone='+491705550000' status='not-reachable'/>
  </lookup>
</iq>`,
  requestAccepted: `<message from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example' id='n5'>
  <request-accepted xmlns='urn:interop:delivery:0' jid='491701234567@wa.example'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ7Z3B5MC9D2K7F0R4WQ8XNT' by='wa.example'/>
</message>`,
  bundlePublish: `<iq type='set' id='k1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <bundle xmlns='urn:interop:keys:0' device='1' registration='4711'>
    <identity>${EC(1)}</identity>
    <signed-prekey id='1' signature='${SIG(2)}'>${EC(3)}</signed-prekey>
    <kyber-prekey id='1' signature='${SIG(4)}' last-resort='true'>${KYBER(5)}</kyber-prekey>
    <prekeys>
      <prekey id='1'>${EC(6)}</prekey>
      <prekey id='2'>${EC(7)}</prekey>
      <kyber-prekey id='2' signature='${SIG(8)}'>${KYBER(9)}</kyber-prekey>
    </prekeys>
  </bundle>
</iq>`,
  devicesPublish: `<iq type='set' id='k2' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <devices xmlns='urn:interop:keys:0'>
    <device id='1'/>
  </devices>
</iq>`,
  devicesPublishResult: `<iq type='result' id='k2' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <devices xmlns='urn:interop:keys:0' jid='alice=3amatrix.bridge.example@matrix.bridge.example' version='3'/>
</iq>`,
  devicesFetch: `<iq type='get' id='k3' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <devices xmlns='urn:interop:keys:0' jid='491701234567@wa.example'/>
</iq>`,
  devicesFetchResult: `<iq type='result' id='k3' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <devices xmlns='urn:interop:keys:0' jid='491701234567@wa.example' version='7'>
    <device id='1'/>
    <device id='2'/>
  </devices>
</iq>`,
  bundlesFetch: `<iq type='get' id='k4' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <bundles xmlns='urn:interop:keys:0' jid='491701234567@wa.example'>
    <device id='1'/>
    <device id='2'/>
  </bundles>
</iq>`,
  bundlesResult: `<iq type='result' id='k4' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <bundles xmlns='urn:interop:keys:0' jid='491701234567@wa.example'>
    <bundle device='1' registration='9120'>
      <identity>${EC(11)}</identity>
      <signed-prekey id='31' signature='${SIG(12)}'>${EC(13)}</signed-prekey>
      <kyber-prekey id='77' signature='${SIG(14)}'>${KYBER(15)}</kyber-prekey>
      <prekey id='1045'>${EC(16)}</prekey>
    </bundle>
    <bundle device='2' registration='9121'>
      <identity>${EC(11)}</identity>
      <signed-prekey id='32' signature='${SIG(17)}'>${EC(18)}</signed-prekey>
      <kyber-prekey id='78' signature='${SIG(19)}'>${KYBER(20)}</kyber-prekey>
    </bundle>
  </bundles>
</iq>`,
  prekeysUpload: `<iq type='set' id='k5' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <prekeys xmlns='urn:interop:keys:0' device='1'>
    <prekey id='101'>${EC(21)}</prekey>
    <kyber-prekey id='51' signature='${SIG(22)}'>${KYBER(23)}</kyber-prekey>
  </prekeys>
</iq>`,
  prekeysCount: `<iq type='result' id='k5' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'><prekeys xmlns='urn:interop:keys:0' device='1' ec='64' kyber='32'/></iq>`,
  prekeysQuery: `<iq type='get' id='k6' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <prekeys xmlns='urn:interop:keys:0' device='1'/>
</iq>`,
  rotate: `<iq type='set' id='k7' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <rotate xmlns='urn:interop:keys:0' device='1'>
    <signed-prekey id='2' signature='${SIG(24)}'>${EC(25)}</signed-prekey>
    <kyber-prekey id='900' signature='${SIG(26)}' last-resort='true'>${KYBER(27)}</kyber-prekey>
  </rotate>
</iq>`,
  prekeysLow: `<message from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example' id='n2'>
  <prekeys-low xmlns='urn:interop:keys:0' device='1' ec='9' kyber='3'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ7W2M3KF9X1C7VD4P8GH6JS' by='wa.example'/>
</message>`,
  devicesChanged: `<message from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example' id='n3'>
  <devices-changed xmlns='urn:interop:keys:0' jid='491701234567@wa.example' version='8'>
    <device id='1'/>
    <device id='2' change='replaced'/>
    <device id='3' change='added'/>
    <removed id='4'/>
  </devices-changed>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ7W9TZ1B3N6M0QR8K5WD2XE' by='wa.example'/>
</message>`,
  encrypted: `<message type='chat' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'
         from='alice=3amatrix.bridge.example@matrix.bridge.example/1' to='491701234567@wa.example'>
  <encrypted xmlns='urn:interop:e2ee:0'>
    <header sid='1'>
      <keys jid='491701234567@wa.example'>
        <key rid='1' kex='true'>${CT(31)}</key>
        <key rid='2'>${CT(32)}</key>
      </keys>
    </header>
  </encrypted>
  <origin-id xmlns='urn:xmpp:sid:0' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>
</message>`,
  staleDeviceList: `<error type='modify'>
  <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
  <stale-device-list xmlns='urn:interop:errors:0' jid='491701234567@wa.example'>
    <device id='1'/>
    <device id='3'/>
  </stale-device-list>
</error>`,
  envelope: `<envelope xmlns='urn:interop:envelope:0'>
  <content>
    <body xmlns='urn:interop:content:0'>Hi! *Bold* and _italic_.</body>
  </content>
  <rpad>opInM70HsTcuPGNtM0xQPw</rpad>
  <id value='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>
  <time stamp='2025-03-01T12:00:00.000Z'/>
  <to jid='491701234567@wa.example'/>
  <from jid='alice=3amatrix.bridge.example@matrix.bridge.example'/>
</envelope>`,
  retry: `<message type='chat' id='r-6a1f' from='alice=3amatrix.bridge.example@matrix.bridge.example/1'
         to='491701234567@wa.example/2'>
  <retry xmlns='urn:interop:e2ee:0' id='3EB0A91C52' count='1' registration='4711' reason='decrypt-failed'/>
  <origin-id xmlns='urn:xmpp:sid:0' id='r-6a1f'/>
</message>`,
  media: `<media xmlns='urn:interop:content:0' kind='document'
       url='https://wa.example/media/b/7d1c9f0e4b2a48c3a1f65b8e0d2c7a94'
       type='application/octet-stream' size='1000'
       sha256='TkwpSzMfeiCZo3m+w0ufn8A9xGq0ZdmY9NaD2lNIfm0='
       enc-sha256='8EHDs7qrWx7Nu0aEtTmQKexTeyTnIIIZOIHIhfy21Ek='
       key='//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA='>
  <filename>pattern.bin</filename>
</media>`,
  mediaImage: `<media xmlns='urn:interop:content:0' kind='image' width='1280' height='960'
       url='https://wa.example/media/b/5e0c41d7a2b94f6e8c13d0a9b7e25f48' type='image/jpeg' size='183211'
       sha256='${HASH(41)}' enc-sha256='${HASH(42)}' key='${HASH(43)}'>
  <thumbnail width='64' height='48'>/9j/4AAQSkZJRgABAQ==</thumbnail>
</media>`,
  mediaVoice: `<media xmlns='urn:interop:content:0' kind='audio' voice='true' duration='7'
       url='https://wa.example/media/b/0b9e2d5c8f1a47b3a6d09e2c4f7b8a15' type='audio/ogg; codecs=opus' size='11843'
       sha256='${HASH(44)}' enc-sha256='${HASH(45)}' key='${HASH(46)}'>
  <waveform>Mj1IUVhdX15bVU1DOC0iGBAKBgUHCxIbJTE8RlBXXF9fXFZORTovJBoRCgYFBgsRGiQvOkVOVlxfX1xXT0Y7MA==</waveform>
</media>`,
  senderKey: `<sender-key xmlns='urn:interop:content:0' group='k3x9q2@g.wa.example'>${CT(47)}</sender-key>`,
  reply: `<reply xmlns='urn:interop:content:0' id='3EB0A91C52' author='491701234567@wa.example'>
  <quote>Are you coming tonight?</quote>
</reply>`,
  reactions: `<reactions xmlns='urn:interop:content:0' id='3EB0A91C52' author='491701234567@wa.example'>
  <reaction>👍</reaction>
</reactions>`,
  replace: `<replace xmlns='urn:interop:content:0' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>`,
  retract: `<retract xmlns='urn:interop:content:0' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>`,
  location: `<location xmlns='urn:interop:content:0' lat='52.5200066' lon='13.4049540' accuracy='12'>
  <name>Alexanderplatz</name>
  <address>10178 Berlin</address>
</location>`,
  contact: `<contact xmlns='urn:interop:content:0'>
  <vcard>BEGIN:VCARD&#13;
VERSION:3.0&#13;
FN:Carol Example&#13;
TEL;TYPE=CELL:+491705550123&#13;
END:VCARD&#13;
</vcard>
</contact>`,
  disappearing: `<disappearing xmlns='urn:interop:content:0' timer='604800'/>`,
  expire: `<expire xmlns='urn:interop:content:0' timer='604800'/>`,
  nick: `<nick xmlns='urn:interop:content:0'>Alice</nick>`,
  call: `<call xmlns='urn:interop:content:0' call-id='b9548d57-5184-4cee-9a00-9a5c9b5d550b'
      media='video' outcome='missed' initiator='491701234567@wa.example'/>`,
  fallback: `<fallback xmlns='urn:interop:content:0'>Reacted 👍 to “Are you coming tonight?”</fallback>`,
  slotRequest: `<iq type='get' id='u1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <request xmlns='urn:interop:media:0' kind='document' size='1018'/>
</iq>`,
  slot: `<iq type='result' id='u1' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <slot xmlns='urn:interop:media:0' expires='2025-03-01T12:10:00.000Z'>
    <put url='https://wa.example/media/up/7d1c9f0e4b2a48c3a1f65b8e0d2c7a94'>
      <header name='Authorization'>Bearer tgraT06xN4k</header>
    </put>
    <get url='https://wa.example/media/b/7d1c9f0e4b2a48c3a1f65b8e0d2c7a94'/>
  </slot>
</iq>`,
  accepted: `<message from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example/1' id='a-01HQ7X'>
  <accepted xmlns='urn:interop:delivery:0' origin-id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'
            stanza-id='01HQ7X0B6DZ7P2H9K4T1VC8MGF' stamp='2025-03-01T12:00:00.412Z' seq='18'
            conversation='491701234567@wa.example'/>
</message>`,
  bounce: `<message type='error' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11' from='491701234567@wa.example'
         to='alice=3amatrix.bridge.example@matrix.bridge.example/1'>
  <origin-id xmlns='urn:xmpp:sid:0' id='c8f1a0e2-8d6b-4a57-9b1e-0f3d2c7a9e11'/>
  <error type='cancel'>
    <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <not-reachable xmlns='urn:interop:errors:0'/>
  </error>
</message>`,
  delivery: `<message type='chat' id='3EB0A91C52' from='491701234567@wa.example/1'
         to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <encrypted xmlns='urn:interop:e2ee:0'>
    <header sid='1'>
      <keys jid='alice=3amatrix.bridge.example@matrix.bridge.example'>
        <key rid='1'>${CT(51)}</key>
      </keys>
    </header>
  </encrypted>
  <origin-id xmlns='urn:xmpp:sid:0' id='3EB0A91C52'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ7Y4C2PA8R5E3J0N9WX6KBT' by='wa.example'/>
  <meta xmlns='urn:interop:delivery:0' stamp='2025-03-01T12:01:10.007Z' seq='19'/>
</message>`,
  ack: `<message from='matrix.bridge.example' to='wa.example' id='ack-88'>
  <ack xmlns='urn:interop:delivery:0'>
    <item stanza-id='01HQ7Y4C2PA8R5E3J0N9WX6KBT'/>
    <item stanza-id='01HQ7W9TZ1B3N6M0QR8K5WD2XE'/>
  </ack>
</message>`,
  received: `<message type='chat' id='rc-1' from='alice=3amatrix.bridge.example@matrix.bridge.example/1'
         to='491701234567@wa.example'>
  <received xmlns='urn:interop:delivery:0' id='3EB0A91C52' author='491701234567@wa.example'/>
  <origin-id xmlns='urn:xmpp:sid:0' id='rc-1'/>
</message>`,
  displayed: `<message type='chat' id='dm-1' from='alice=3amatrix.bridge.example@matrix.bridge.example/1'
         to='491701234567@wa.example'>
  <displayed xmlns='urn:interop:delivery:0' id='3EB0A91C52' author='491701234567@wa.example'/>
  <origin-id xmlns='urn:xmpp:sid:0' id='dm-1'/>
</message>`,
  composing: `<message type='chat' from='alice=3amatrix.bridge.example@matrix.bridge.example/1' to='491701234567@wa.example'>
  <composing xmlns='http://jabber.org/protocol/chatstates'/>
</message>`,
  blocklist: `<iq type='get' id='b1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <blocklist xmlns='urn:interop:abuse:0'/>
</iq>`,
  blocklistResult: `<iq type='result' id='b1' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'><blocklist xmlns='urn:interop:abuse:0'><item jid='491705550123@wa.example'/></blocklist></iq>`,
  block: `<iq type='set' id='b2' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <block xmlns='urn:interop:abuse:0'>
    <item jid='491701234567@wa.example'/>
  </block>
</iq>`,
  unblock: `<iq type='set' id='b3' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <unblock xmlns='urn:interop:abuse:0'>
    <item jid='491701234567@wa.example'/>
  </unblock>
</iq>`,
  report: `<iq type='set' id='s1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='wa.example'>
  <report xmlns='urn:interop:abuse:0' jid='491701234567@wa.example' reason='phishing' block='true'>
    <text>Asked for my bank login.</text>
    <message origin-id='3EB0A91C52' stanza-id='01HQ7Y4C2PA8R5E3J0N9WX6KBT'
             stamp='2025-03-01T12:01:10.007Z' from='491701234567@wa.example'>
      <envelope-data>PGVudmVsb3BlIHhtbG5zPSd1cm46aW50ZXJvcDplbnZlbG9wZTowJz4=</envelope-data>
    </message>
  </report>
</iq>`,
  reportReceived: `<message from='wa.example' to='matrix.bridge.example' id='n4'>
  <report-received xmlns='urn:interop:abuse:0' jid='alice=3amatrix.bridge.example@matrix.bridge.example'
                   reason='spam' stamp='2025-03-02T08:00:00.000Z'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ9A1R0SG2M7Y4D8C1ZQ5VHN' by='wa.example'/>
</message>`,
  rateLimited: `<error type='wait'>
  <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
  <rate-limited xmlns='urn:interop:errors:0' scope='messages' retry-after='23'/>
</error>`,
  iqNotReachable: `<iq type='error' id='k4' from='wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <error type='cancel'>
    <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <not-reachable xmlns='urn:interop:errors:0'/>
  </error>
</iq>`,
  groupRetry: `<message type='groupchat' id='r-9' from='alice=3amatrix.bridge.example@matrix.bridge.example/1'
         to='k3x9q2@g.wa.example'>
  <retry xmlns='urn:interop:e2ee:0' id='7A1C0D' author='491701234567@wa.example' device='1'
         count='1' registration='4711' reason='no-sender-key'/>
  <origin-id xmlns='urn:xmpp:sid:0' id='r-9'/>
</message>`,
  groupDelivery: `<message type='groupchat' id='5d2f0c7e' from='k3x9q2@g.wa.example'
         to='bob=3amatrix.bridge.example@matrix.bridge.example'>
  <sender xmlns='urn:interop:groups:0' jid='alice=3amatrix.bridge.example@matrix.bridge.example' device='1'/>
  <encrypted xmlns='urn:interop:e2ee:0'>
    <header sid='1'/>
    <group>${CT(52)}</group>
  </encrypted>
  <origin-id xmlns='urn:xmpp:sid:0' id='5d2f0c7e'/>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ8C0D9XE5Q1V8H2N7B4ZGRW' by='g.wa.example'/>
  <meta xmlns='urn:interop:delivery:0' stamp='2025-03-01T13:05:00.000Z' seq='43'/>
</message>`,
  groupCreate: `<iq type='set' id='g1' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='g.wa.example'>
  <create xmlns='urn:interop:groups:0'>
    <subject>Trip planning</subject>
    <participant jid='491701234567@wa.example'/>
    <participant jid='491705550000@wa.example'/>
  </create>
</iq>`,
  groupCreated: `<iq type='result' id='g1' from='g.wa.example' to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <group xmlns='urn:interop:groups:0' jid='k3x9q2@g.wa.example' version='1'
         creator='alice=3amatrix.bridge.example@matrix.bridge.example' created='2025-03-01T12:00:00.000Z'>
    <subject>Trip planning</subject>
    <participant jid='alice=3amatrix.bridge.example@matrix.bridge.example' role='admin'/>
    <participant jid='491701234567@wa.example' role='member'/>
    <rejected jid='491705550000@wa.example' reason='not-reachable'/>
  </group>
</iq>`,
  groupInfo: `<iq type='get' id='g2' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='k3x9q2@g.wa.example'>
  <info xmlns='urn:interop:groups:0'/>
</iq>`,
  groupAdd: `<iq type='set' id='g3' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='k3x9q2@g.wa.example'><add xmlns='urn:interop:groups:0'><participant jid='491705550123@wa.example'/></add></iq>`,
  groupSubject: `<iq type='set' id='g4' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='k3x9q2@g.wa.example'><subject xmlns='urn:interop:groups:0'>Trip planning 2025</subject></iq>`,
  groupLeave: `<iq type='set' id='g5' from='alice=3amatrix.bridge.example@matrix.bridge.example' to='k3x9q2@g.wa.example'><leave xmlns='urn:interop:groups:0'/></iq>`,
  groupEvent: `<message type='groupchat' id='e-7' from='k3x9q2@g.wa.example'
         to='alice=3amatrix.bridge.example@matrix.bridge.example'>
  <event xmlns='urn:interop:groups:0' type='participants-added' by='491701234567@wa.example' version='6'>
    <participant jid='491705550123@wa.example' role='member'/>
  </event>
  <stanza-id xmlns='urn:xmpp:sid:0' id='01HQ8B7F1NK6T0W3R9P2XJ4MDA' by='g.wa.example'/>
  <meta xmlns='urn:interop:delivery:0' stamp='2025-03-01T13:00:00.000Z' seq='42'/>
</message>`,
  groupMessage: `<message type='groupchat' id='5d2f0c7e' from='alice=3amatrix.bridge.example@matrix.bridge.example/1'
         to='k3x9q2@g.wa.example'>
  <encrypted xmlns='urn:interop:e2ee:0'>
    <header sid='1'>
      <keys jid='491701234567@wa.example'>
        <key rid='1' kex='true'>${CT(53)}</key>
        <key rid='2' kex='true'>${CT(54)}</key>
      </keys>
    </header>
    <group>${CT(55)}</group>
  </encrypted>
  <origin-id xmlns='urn:xmpp:sid:0' id='5d2f0c7e'/>
</message>`,
} as const;

export type SpecExample = keyof typeof SPEC;
