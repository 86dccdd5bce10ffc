import JsSIP from "jssip";

export default JsSIP;
